package keys

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"sort"
	"time"

	"github.com/uptrace/bun"
)

// row is one stored signing key.
type row struct {
	bun.BaseModel `bun:"table:signing_keys"`

	KID         string    `bun:"kid,pk"`
	Alg         string    `bun:"alg,notnull"`
	PublicKey   []byte    `bun:"public_key,notnull"`
	SealedKey   []byte    `bun:"sealed_key,notnull"`
	CreatedAt   time.Time `bun:"created_at,notnull"`
	ActivatesAt time.Time `bun:"activates_at,notnull"`
}

// bootstrapLock keys the advisory lock that makes first start-up safe when
// several replicas start at once: exactly one of them creates the first key.
const bootstrapLock = int64(0x6761746568736b31) // "gatehsk1"

// Thumbprint is the RFC 7638 JWK thumbprint of an Ed25519 public key, used
// as its kid: stable, and derived from the key alone.
func Thumbprint(pub ed25519.PublicKey) string {
	x := base64.RawURLEncoding.EncodeToString(pub)
	h := sha256.Sum256([]byte(`{"crv":"Ed25519","kty":"OKP","x":"` + x + `"}`))
	return base64.RawURLEncoding.EncodeToString(h[:])
}

func newRow(s *sealer, activatesAt time.Time) (*row, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	kid := Thumbprint(pub)
	now := time.Now().UTC()
	return &row{
		KID: kid, Alg: "EdDSA", PublicKey: pub, SealedKey: s.seal(priv.Seed(), kid),
		CreatedAt: now, ActivatesAt: activatesAt.UTC(),
	}, nil
}

// ensureKey creates an immediately active key when the table is empty. It
// runs under a transaction-scoped advisory lock, so racing replicas agree on
// one key.
func ensureKey(ctx context.Context, db bun.IDB, s *sealer) (created bool, err error) {
	err = db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		if _, err := tx.ExecContext(ctx, "SELECT pg_advisory_xact_lock(?)", bootstrapLock); err != nil {
			return err
		}
		n, err := tx.NewSelect().Model((*row)(nil)).Count(ctx)
		if err != nil || n > 0 {
			return err
		}
		r, err := newRow(s, time.Now())
		if err != nil {
			return err
		}
		_, err = tx.NewInsert().Model(r).Exec(ctx)
		created = err == nil
		return err
	})
	return created, err
}

func loadRows(ctx context.Context, db bun.IDB) ([]row, error) {
	var rows []row
	if err := db.NewSelect().Model(&rows).Order("activates_at ASC", "created_at ASC").Scan(ctx); err != nil {
		return nil, err
	}
	sort.SliceStable(rows, func(i, j int) bool { return rows[i].ActivatesAt.Before(rows[j].ActivatesAt) })
	return rows, nil
}

// Rotation describes what Rotate did.
type Rotation struct {
	KID         string
	ActivatesAt time.Time
	Pruned      []string // kids removed because no live token can carry them
}

// Rotate stores a new key that is published at once (replicas pick it up on
// their next reload) and signs from now+activationDelay, after every proxy
// has refreshed its JWKS. Keys whose tokens have all expired are pruned:
// a key stays published until tokenTTL+margin after its successor activated.
func Rotate(ctx context.Context, db bun.IDB, authSecret string, activationDelay, tokenTTL, margin time.Duration) (Rotation, error) {
	s, err := newSealer(authSecret)
	if err != nil {
		return Rotation{}, err
	}
	var rot Rotation
	err = db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		if _, err := tx.ExecContext(ctx, "SELECT pg_advisory_xact_lock(?)", bootstrapLock); err != nil {
			return err
		}
		rows, err := loadRows(ctx, tx)
		if err != nil {
			return err
		}
		// Refuse to rotate with the wrong AUTH_SECRET: replicas could not
		// unseal the new key and would keep signing with the old one.
		for i := range rows {
			if _, err := s.open(rows[i].SealedKey, rows[i].KID); err != nil {
				return fmt.Errorf("key %s: %w", rows[i].KID, err)
			}
		}
		now := time.Now()
		for _, k := range expired(rows, now, tokenTTL, margin) {
			if _, err := tx.NewDelete().Model((*row)(nil)).Where("kid = ?", k).Exec(ctx); err != nil {
				return err
			}
			rot.Pruned = append(rot.Pruned, k)
		}
		r, err := newRow(s, now.Add(activationDelay))
		if err != nil {
			return err
		}
		if _, err := tx.NewInsert().Model(r).Exec(ctx); err != nil {
			return err
		}
		rot.KID, rot.ActivatesAt = r.KID, r.ActivatesAt
		return nil
	})
	return rot, err
}

// expired lists keys superseded long enough ago that no unexpired token can
// carry them. rows are sorted by activation.
func expired(rows []row, now time.Time, tokenTTL, margin time.Duration) []string {
	var out []string
	for i := 0; i+1 < len(rows); i++ {
		next := rows[i+1].ActivatesAt
		if !next.After(now) && now.After(next.Add(tokenTTL+margin)) {
			out = append(out, rows[i].KID)
		}
	}
	return out
}
