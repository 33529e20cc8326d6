package main

import (
	"context"
	"database/sql"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"strings"
	"time"

	"go.uber.org/zap"

	"gatehouse.dev/authsvc/internal/password"
	"gatehouse.dev/kit/pgdb"
)

// runImportBetterAuth implements `authsvc import-better-auth --from
// postgres://…`: it copies Better Auth's users (tables "user" and
// "account", Better Auth's default names) into authsvc's database, keeping
// ids, names, emails, email verification and image. A credential
// account's scrypt hash is kept as is and replaced by argon2id at the
// user's first sign-in (internal/password.BetterAuthPrefix); a user
// without one (social sign-in only) gets no password and can set one
// through a password reset.
//
// It never overwrites: a user whose id is already here with the same email
// counts as already imported (so a second run changes nothing), and one
// whose email or id belongs to another account here is refused and listed
// by id; any refusal makes the command fail after importing the rest.
func runImportBetterAuth(ctx context.Context, cfg config, log *zap.Logger, out, stderr io.Writer, args []string) error {
	fs := flag.NewFlagSet("import-better-auth", flag.ContinueOnError)
	fs.SetOutput(stderr)
	from := fs.String("from", "", "Better Auth's Postgres database, postgres://user:pass@host:port/db")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if u, err := url.Parse(*from); *from == "" || err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return errors.New("import-better-auth: --from postgres://user:pass@host:port/db is required")
	}
	src, err := pgdb.Open(*from, pgdb.Options{})
	if err != nil {
		return fmt.Errorf("import-better-auth: --from: %w", err)
	}
	defer src.Close()
	dst, err := openDB(ctx, cfg, log) // applies authsvc's migrations first
	if err != nil {
		return err
	}
	defer dst.Close()

	ictx, cancel := context.WithTimeout(ctx, time.Hour)
	defer cancel()
	rows, err := src.QueryContext(ictx, `
		SELECT u.id, u.name, u.email, u."emailVerified", u.image, u."createdAt", u."updatedAt", a.password
		FROM "user" u
		LEFT JOIN LATERAL (
			SELECT password FROM account
			WHERE "userId" = u.id AND "providerId" = 'credential' AND password IS NOT NULL
			ORDER BY "createdAt" LIMIT 1
		) a ON true
		ORDER BY u."createdAt", u.id`)
	if err != nil {
		return fmt.Errorf("import-better-auth: reading Better Auth's user and account tables: %w", err)
	}
	defer rows.Close()
	var imported, present, noPassword int
	var refused []string
	for rows.Next() {
		var (
			id, name, email      string
			verified             bool
			image, pw            sql.NullString
			createdAt, updatedAt time.Time
		)
		if err := rows.Scan(&id, &name, &email, &verified, &image, &createdAt, &updatedAt, &pw); err != nil {
			return fmt.Errorf("import-better-auth: %w", err)
		}
		hash := ""
		if pw.Valid {
			if hash, err = password.FromBetterAuth(pw.String); err != nil {
				refused = append(refused, id+" (password is not a Better Auth scrypt hash)")
				continue
			}
		} else {
			noPassword++
		}
		var img *string
		if image.Valid {
			img = &image.String
		}
		email = strings.ToLower(strings.TrimSpace(email))
		res, err := dst.ExecContext(ictx, `
			INSERT INTO users (id, name, email, email_verified, image, password_hash, created_at, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
			id, name, email, verified, img, hash, createdAt.UTC(), updatedAt.UTC())
		if err != nil {
			return fmt.Errorf("import-better-auth: user %s: %w", id, err)
		}
		if n, _ := res.RowsAffected(); n == 1 {
			imported++
			continue
		}
		var same bool
		err = dst.QueryRowContext(ictx, `SELECT EXISTS (SELECT 1 FROM users WHERE id = ? AND lower(email) = lower(?))`, id, email).Scan(&same)
		if err != nil {
			return fmt.Errorf("import-better-auth: user %s: %w", id, err)
		}
		if same {
			present++
		} else {
			refused = append(refused, id+" (its email or id belongs to another account here)")
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("import-better-auth: %w", err)
	}
	fmt.Fprintf(out, "imported %d user(s) (%d without a password: they can set one by password reset); %d already here; %d refused\n",
		imported, noPassword, present, len(refused))
	for _, r := range refused {
		fmt.Fprintf(out, "  refused %s\n", r)
	}
	if len(refused) > 0 {
		return fmt.Errorf("import-better-auth: %d user(s) refused; nothing was overwritten", len(refused))
	}
	return nil
}
