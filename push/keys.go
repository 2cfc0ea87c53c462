package push

import (
	"crypto/ecdh"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"

	webpush "github.com/SherClockHolmes/webpush-go"

	"github.com/intercomd/intercomd/internal/statefile"
)

// Keys is a VAPID key pair (RFC 8292): Public is the uncompressed P-256
// point, Private the scalar, both unpadded base64url as the Push API's
// applicationServerKey and webpush-go take them.
type Keys struct {
	Public  string `json:"public"`
	Private string `json:"private"`
}

// String never shows the private key.
func (k Keys) String() string { return "vapid:" + k.Public }

// LoadOrCreateKeys reads the key pair at path, or makes one and writes it
// there (mode 0600, atomically) when the file does not exist. A key pair
// must last: every subscription is bound to it, and a new one orphans them
// all.
func LoadOrCreateKeys(path string) (Keys, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		var k Keys
		if err := json.Unmarshal(b, &k); err != nil {
			return Keys{}, fmt.Errorf("vapid keys %s: %w", path, err)
		}
		if err := k.check(); err != nil {
			return Keys{}, fmt.Errorf("vapid keys %s: %w", path, err)
		}
		return k, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return Keys{}, fmt.Errorf("vapid keys: %w", err)
	}
	priv, pub, err := webpush.GenerateVAPIDKeys()
	if err != nil {
		return Keys{}, fmt.Errorf("vapid keys: %w", err)
	}
	k := Keys{Public: pub, Private: priv}
	b, _ = json.MarshalIndent(k, "", "  ")
	if err := statefile.Write(path, append(b, '\n'), 0o600); err != nil {
		return Keys{}, fmt.Errorf("vapid keys: %w", err)
	}
	return k, nil
}

// check verifies that Public is the public key of Private.
func (k Keys) check() error {
	d, err := decodeKey(k.Private)
	if err != nil {
		return fmt.Errorf("private key: %w", err)
	}
	priv, err := ecdh.P256().NewPrivateKey(d)
	if err != nil {
		return fmt.Errorf("private key: %w", err)
	}
	p, err := decodeKey(k.Public)
	if err != nil {
		return fmt.Errorf("public key: %w", err)
	}
	if string(priv.PublicKey().Bytes()) != string(p) {
		return errors.New("public key does not belong to the private key")
	}
	return nil
}

// decodeKey decodes base64url with or without padding.
func decodeKey(s string) ([]byte, error) {
	if b, err := base64.RawURLEncoding.DecodeString(s); err == nil {
		return b, nil
	}
	return base64.URLEncoding.DecodeString(s)
}
