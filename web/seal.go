package web

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"sync"
	"time"

	"github.com/approvals-dev/approvals/approvals"
)

// Short-lived state the browser carries between two requests (a sign-in in
// progress, flash messages) is sealed with AES-256-GCM: encrypted, so the
// browser learns nothing from it, and authenticated, so a changed or
// made-up cookie is refused. The additional data names what the cookie is
// for and what it is bound to (its own name, or the session), so that one
// sealed value cannot stand in for another. Nonces are random (96 bits):
// far fewer values than the 2^32 that allows are sealed under one key in
// its day.
//
// The keys are kept in the store (approvals.SessionStore.CookieKeys), so
// every replica opens what another sealed and a restart breaks no sign-in
// in progress. A new key is made every cookieKeyRotation by whichever
// replica first needs one; the store keeps the one before it, which opens
// what was sealed in the minutes before the rotation (nothing sealed lives
// longer than loginTTL). A key thus retires within two rotations; there is
// nothing to do by hand. Someone holding a copy of the data file can forge
// these cookies but gains no sign-in by it: a sign-in still needs the
// identity provider's one-time code for the same state and PKCE verifier.

// cookieKeyRotation is how often a new cookie key is made.
const cookieKeyRotation = 24 * time.Hour

// keyRefreshEvery bounds how often a replica re-reads the keys for a
// cookie sealed under a key it does not know (another replica rotated):
// made-up key ids must not turn into a store read per request.
const keyRefreshEvery = 10 * time.Second

// sealVersion is the first byte of every sealed value.
const sealVersion = 1

// errUnsealed says a sealed value was not made by this server for this
// purpose: tampered, truncated, made for another cookie, or under a key
// long retired.
var errUnsealed = errors.New("the cookie was not sealed by this server for this use")

// sealer seals and opens cookie values under the store's cookie keys.
type sealer struct {
	store approvals.SessionStore
	clock approvals.Clock

	mu      sync.Mutex
	keys    []approvals.CookieKey // newest first
	aeads   map[uint32]cipher.AEAD
	fetched time.Time // when keys were last read
}

func newSealer(store approvals.SessionStore, clock approvals.Clock) *sealer {
	return &sealer{store: store, clock: clock, aeads: map[uint32]cipher.AEAD{}}
}

// refresh reads the keys from the store, which makes a new one when it is
// due. The caller holds s.mu.
func (s *sealer) refresh(ctx context.Context, now time.Time) error {
	fresh := make([]byte, approvals.CookieKeySize)
	_, _ = rand.Read(fresh) // crypto/rand.Read never fails on supported platforms
	keys, err := s.store.CookieKeys(ctx, now, cookieKeyRotation, approvals.CookieKey{Secret: fresh})
	if err != nil {
		return err
	}
	if len(keys) == 0 {
		return errors.New("the store returned no cookie key")
	}
	aeads := map[uint32]cipher.AEAD{}
	for _, k := range keys {
		block, err := aes.NewCipher(k.Secret)
		if err != nil {
			return err
		}
		if aeads[k.ID], err = cipher.NewGCM(block); err != nil {
			return err
		}
	}
	s.keys, s.aeads, s.fetched = keys, aeads, now
	return nil
}

// current returns the newest key, making a new one when it is due.
func (s *sealer) current(ctx context.Context) (uint32, cipher.AEAD, error) {
	now := s.clock.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.keys) == 0 || !s.keys[0].CreatedAt.After(now.Add(-cookieKeyRotation)) {
		if err := s.refresh(ctx, now); err != nil {
			return 0, nil, err
		}
	}
	return s.keys[0].ID, s.aeads[s.keys[0].ID], nil
}

// byID returns the key with the given id, reading the keys again when it
// is unknown and they were not read just now.
func (s *sealer) byID(ctx context.Context, id uint32) (cipher.AEAD, error) {
	now := s.clock.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if a, ok := s.aeads[id]; ok {
		return a, nil
	}
	if len(s.keys) > 0 && now.Sub(s.fetched) < keyRefreshEvery {
		return nil, errUnsealed
	}
	if err := s.refresh(ctx, now); err != nil {
		return nil, err
	}
	if a, ok := s.aeads[id]; ok {
		return a, nil
	}
	return nil, errUnsealed
}

// seal encrypts plain for the use named by aad and returns it as a cookie
// value.
func (s *sealer) seal(ctx context.Context, aad string, plain []byte) (string, error) {
	id, a, err := s.current(ctx)
	if err != nil {
		return "", err
	}
	out := make([]byte, 5+a.NonceSize(), 5+a.NonceSize()+len(plain)+a.Overhead())
	out[0] = sealVersion
	binary.BigEndian.PutUint32(out[1:5], id)
	_, _ = rand.Read(out[5:]) // a random 96-bit nonce per value
	out = a.Seal(out, out[5:], plain, []byte(aad))
	return base64.RawURLEncoding.EncodeToString(out), nil
}

// open decrypts a value seal made for the same aad. It returns errUnsealed
// for anything else, and the store's error when it could not read the
// keys.
func (s *sealer) open(ctx context.Context, aad, value string) ([]byte, error) {
	b, err := base64.RawURLEncoding.DecodeString(value)
	if err != nil || len(b) < 5 || b[0] != sealVersion {
		return nil, errUnsealed
	}
	a, err := s.byID(ctx, binary.BigEndian.Uint32(b[1:5]))
	if err != nil {
		return nil, err
	}
	if len(b) < 5+a.NonceSize()+a.Overhead() {
		return nil, errUnsealed
	}
	nonce, ct := b[5:5+a.NonceSize()], b[5+a.NonceSize():]
	plain, err := a.Open(nil, nonce, ct, []byte(aad))
	if err != nil {
		return nil, errUnsealed
	}
	return plain, nil
}
