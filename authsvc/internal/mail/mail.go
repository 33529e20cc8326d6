// Package mail sends authsvc's transactional mail (password reset, email
// verification) over SMTP: plain text plus HTML as multipart/alternative,
// STARTTLS or implicit TLS, a bounded time per attempt and a few retries of
// transient failures.
//
// It uses github.com/wneessen/go-mail rather than net/smtp: net/smtp is
// frozen, has no context support (so no bounded send time without closing
// the connection by hand), no opportunistic-versus-required STARTTLS
// policy, no MIME building, and no classification of 4xx against 5xx
// replies; go-mail is maintained, has no dependencies outside x/ and covers
// all four.
package mail

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"time"

	gomail "github.com/wneessen/go-mail"
)

// ErrNotConfigured is returned by Send when SMTP_URL is empty: mail is
// refused, never silently dropped (SPEC.md, account lifecycle).
var ErrNotConfigured = errors.New("mail: no SMTP server configured (SMTP_URL is empty)")

// Message is one mail to one recipient.
type Message struct {
	To      string
	Subject string
	Text    string // text/plain body, required
	HTML    string // text/html alternative; empty sends text only
}

// Config configures a Sender. The zero value refuses every mail.
type Config struct {
	// URL is smtp://[user:pass@]host[:port][?starttls=required|opportunistic]
	// (port 587 by default; STARTTLS required, except for a server on
	// loopback without credentials, where it is used when offered) or
	// smtps://[user:pass@]host[:port]
	// (implicit TLS, port 465 by default). Empty disables sending.
	URL  string
	From string // the From address (MAIL_FROM)
	// Timeout bounds one delivery attempt, dial to QUIT; 0 means 10s.
	Timeout time.Duration
	// Attempts is the number of tries for transient failures (connection
	// errors, 4xx replies); 0 means 3. 5xx replies are never retried.
	Attempts int
	// TLS overrides the TLS client configuration (tests trust their own
	// CA with it); nil uses the system roots and the URL's host name.
	TLS *tls.Config
}

// server is a parsed SMTP_URL.
type server struct {
	host, user, pass string
	port             int
	implicitTLS      bool
	policy           gomail.TLSPolicy
}

// ParseURL checks an SMTP_URL. Its errors never quote the URL, which may
// carry a password.
func ParseURL(raw string) error {
	_, err := parseURL(raw)
	return err
}

func parseURL(raw string) (server, error) {
	var s server
	u, err := url.Parse(raw)
	if err != nil {
		return s, errors.New("not a valid URL: want smtp://user:pass@host:port or smtps://…")
	}
	switch u.Scheme {
	case "smtp":
		s.port = 587
	case "smtps":
		s.port, s.implicitTLS = 465, true
	default:
		return s, errors.New("scheme must be smtp or smtps")
	}
	s.host = u.Hostname()
	if s.host == "" {
		return s, errors.New("no host: want smtp://user:pass@host:port")
	}
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return s, errors.New("port must be 1-65535")
		}
		s.port = n
	}
	if u.User != nil {
		s.user = u.User.Username()
		s.pass, _ = u.User.Password()
	}
	// Reset and verification links are credentials: STARTTLS is required
	// by default, so an attacker on the path cannot strip it and read
	// them. Only a mail server on this host (a local relay, Mailpit in
	// development) may go without it; ?starttls=opportunistic says so
	// explicitly for any other.
	s.policy = gomail.TLSMandatory
	if ip := net.ParseIP(s.host); (ip != nil && ip.IsLoopback()) || s.host == "localhost" {
		if s.user == "" {
			s.policy = gomail.TLSOpportunistic
		}
	}
	for k, v := range u.Query() {
		switch {
		case k == "starttls" && len(v) == 1 && v[0] == "required":
			s.policy = gomail.TLSMandatory
		case k == "starttls" && len(v) == 1 && v[0] == "opportunistic":
			s.policy = gomail.TLSOpportunistic
		default:
			return s, fmt.Errorf("unknown parameter %q: want only starttls=required|opportunistic", k)
		}
	}
	if s.implicitTLS && u.Query().Has("starttls") {
		return s, errors.New("starttls does not apply to smtps:// (TLS from the first byte)")
	}
	return s, nil
}

// Sender delivers Messages. A Sender made from an empty URL refuses every
// mail with ErrNotConfigured.
type Sender struct {
	cfg Config
	srv *server // nil: not configured
}

// New returns a Sender for cfg.
func New(cfg Config) (*Sender, error) {
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	if cfg.Attempts <= 0 {
		cfg.Attempts = 3
	}
	s := &Sender{cfg: cfg}
	if cfg.URL == "" {
		return s, nil
	}
	srv, err := parseURL(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("SMTP_URL: %w", err)
	}
	if err := gomail.NewMsg().From(cfg.From); err != nil {
		return nil, fmt.Errorf("MAIL_FROM: %w", err)
	}
	s.srv = &srv
	return s, nil
}

// Enabled reports whether an SMTP server is configured.
func (s *Sender) Enabled() bool { return s != nil && s.srv != nil }

// Send delivers m, retrying transient failures with a short back-off
// (250ms, 500ms, …) while ctx allows. It returns ErrNotConfigured without
// an SMTP server; any other error means the mail was not accepted.
func (s *Sender) Send(ctx context.Context, m Message) error {
	if !s.Enabled() {
		return ErrNotConfigured
	}
	msg := gomail.NewMsg()
	if err := msg.From(s.cfg.From); err != nil {
		return err
	}
	if err := msg.To(m.To); err != nil {
		return fmt.Errorf("mail: recipient: %w", err)
	}
	msg.Subject(m.Subject)
	msg.SetDate()
	msg.SetMessageID()
	msg.SetBodyString(gomail.TypeTextPlain, m.Text)
	if m.HTML != "" {
		msg.AddAlternativeString(gomail.TypeTextHTML, m.HTML)
	}
	var err error
	backoff := 250 * time.Millisecond
	for attempt := 1; ; attempt++ {
		err = s.attempt(ctx, msg)
		if err == nil || attempt >= s.cfg.Attempts || permanent(err) {
			return err
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return errors.Join(err, ctx.Err())
		case <-t.C:
		}
		backoff *= 2
	}
}

func (s *Sender) attempt(ctx context.Context, msg *gomail.Msg) error {
	opts := []gomail.Option{gomail.WithPort(s.srv.port), gomail.WithTimeout(s.cfg.Timeout)}
	tc := s.cfg.TLS
	if tc == nil {
		tc = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	tc = tc.Clone()
	if tc.ServerName == "" {
		tc.ServerName = s.srv.host
	}
	opts = append(opts, gomail.WithTLSConfig(tc))
	if s.srv.implicitTLS {
		opts = append(opts, gomail.WithSSL())
	} else {
		opts = append(opts, gomail.WithTLSPolicy(s.srv.policy))
	}
	if s.srv.user != "" {
		opts = append(opts, gomail.WithSMTPAuth(gomail.SMTPAuthAutoDiscover),
			gomail.WithUsername(s.srv.user), gomail.WithPassword(s.srv.pass))
	}
	c, err := gomail.NewClient(s.srv.host, opts...)
	if err != nil {
		return err
	}
	actx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	return c.DialAndSendWithContext(actx, msg)
}

// permanent reports a 5xx answer: retrying cannot help.
func permanent(err error) bool {
	var se *gomail.SendError
	if errors.As(err, &se) {
		return !se.IsTemp() && se.ErrorCode() >= 500
	}
	return false
}

// Describe summarises a Send error for logs without the SMTP server's
// reply text, which may quote the recipient's address: the reply code and
// enhanced status for a rejected mail, else the error (a connection or TLS
// failure, which names only the server).
func Describe(err error) string {
	var se *gomail.SendError
	if errors.As(err, &se) {
		return fmt.Sprintf("SMTP %d %s (temporary=%v)", se.ErrorCode(), se.EnhancedStatusCode(), se.IsTemp())
	}
	return err.Error()
}
