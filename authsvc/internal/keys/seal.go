package keys

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"errors"
)

// sealer encrypts private keys at rest with AES-256-GCM under a key derived
// from AUTH_SECRET by HKDF-SHA256, so the database alone never yields a key
// that can sign. The kid is authenticated as additional data, so a sealed
// key cannot be moved to another row.
type sealer struct{ aead cipher.AEAD }

const sealInfo = "gatehouse authsvc signing-key seal v1"

func newSealer(secret string) (*sealer, error) {
	if len(secret) < 32 {
		return nil, errors.New("keys: AUTH_SECRET shorter than 32 bytes")
	}
	k, err := hkdf.Key(sha256.New, []byte(secret), nil, sealInfo, 32)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(k)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &sealer{aead: aead}, nil
}

func (s *sealer) seal(plain []byte, kid string) []byte {
	nonce := make([]byte, s.aead.NonceSize(), s.aead.NonceSize()+len(plain)+s.aead.Overhead())
	_, _ = rand.Read(nonce)
	return s.aead.Seal(nonce, nonce, plain, []byte(kid))
}

// ErrUnseal means a stored key could not be decrypted: AUTH_SECRET changed,
// or the row was tampered with.
var ErrUnseal = errors.New("keys: cannot unseal a stored signing key (was AUTH_SECRET changed?)")

func (s *sealer) open(sealed []byte, kid string) ([]byte, error) {
	n := s.aead.NonceSize()
	if len(sealed) < n {
		return nil, ErrUnseal
	}
	plain, err := s.aead.Open(nil, sealed[:n], sealed[n:], []byte(kid))
	if err != nil {
		return nil, ErrUnseal
	}
	return plain, nil
}
