// Package passkeytest is a software WebAuthn authenticator and client for
// tests: it answers the options the gateway sends as a browser with a
// platform authenticator would (packed "none" attestation, ES256 keys,
// discoverable credentials), with the flags a test sets.
package passkeytest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/go-webauthn/webauthn/protocol/webauthncbor"
)

var b64 = base64.RawURLEncoding

// Authenticator holds credentials for one origin.
type Authenticator struct {
	// Origin is the page's origin the client reports.
	Origin string
	// UV sets the user-verified flag; BackupEligible and BackupState the
	// backup flags (a synced passkey).
	UV, BackupEligible, BackupState bool
	// ZeroCounter keeps the signature counter at 0 (authenticators that
	// keep none); otherwise each signature adds one.
	ZeroCounter bool
	creds       []*credential
}

type credential struct {
	id, userHandle []byte
	rpID           string
	key            *ecdsa.PrivateKey
	counter        uint32
}

type creationOptions struct {
	PublicKey struct {
		Challenge string `json:"challenge"`
		RP        struct {
			ID string `json:"id"`
		} `json:"rp"`
		User struct {
			ID string `json:"id"`
		} `json:"user"`
	} `json:"publicKey"`
}

type requestOptions struct {
	PublicKey struct {
		Challenge string `json:"challenge"`
		RPID      string `json:"rpId"`
		Allow     []struct {
			ID string `json:"id"`
		} `json:"allowCredentials"`
	} `json:"publicKey"`
}

func (a *Authenticator) flags(attested bool) byte {
	f := byte(0x01) // UP
	if a.UV {
		f |= 0x04
	}
	if a.BackupEligible {
		f |= 0x08
	}
	if a.BackupState {
		f |= 0x10
	}
	if attested {
		f |= 0x40
	}
	return f
}

func clientData(typ, challenge, origin string) []byte {
	b, _ := json.Marshal(map[string]any{"type": typ, "challenge": challenge, "origin": origin, "crossOrigin": false})
	return b
}

// Create answers navigator.credentials.create's options (the JSON the
// gateway sent) with the JSON of a new PublicKeyCredential.
func (a *Authenticator) Create(options []byte) ([]byte, error) {
	var o creationOptions
	if err := json.Unmarshal(options, &o); err != nil {
		return nil, err
	}
	user, err := b64.DecodeString(o.PublicKey.User.ID)
	if err != nil {
		return nil, fmt.Errorf("user.id: %w", err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	c := &credential{id: make([]byte, 32), userHandle: user, rpID: o.PublicKey.RP.ID, key: key}
	_, _ = rand.Read(c.id)
	a.creds = append(a.creds, c)
	x, y := key.PublicKey.X.FillBytes(make([]byte, 32)), key.PublicKey.Y.FillBytes(make([]byte, 32))
	cose, err := webauthncbor.Marshal(map[int]any{1: 2, 3: -7, -1: 1, -2: x, -3: y})
	if err != nil {
		return nil, err
	}
	rpHash := sha256.Sum256([]byte(c.rpID))
	auth := append(rpHash[:], a.flags(true), 0, 0, 0, 0)
	auth = append(auth, make([]byte, 16)...) // AAGUID
	auth = binary.BigEndian.AppendUint16(auth, uint16(len(c.id)))
	auth = append(auth, c.id...)
	auth = append(auth, cose...)
	att, err := webauthncbor.Marshal(map[string]any{"fmt": "none", "attStmt": map[string]any{}, "authData": auth})
	if err != nil {
		return nil, err
	}
	cd := clientData("webauthn.create", o.PublicKey.Challenge, a.Origin)
	return json.Marshal(map[string]any{
		"id": b64.EncodeToString(c.id), "rawId": b64.EncodeToString(c.id), "type": "public-key",
		"authenticatorAttachment": "platform", "clientExtensionResults": map[string]any{},
		"response": map[string]any{
			"clientDataJSON": b64.EncodeToString(cd), "attestationObject": b64.EncodeToString(att),
			"transports": []string{"internal"},
		},
	})
}

// Get answers navigator.credentials.get's options with the JSON of an
// assertion by the first credential for the RP ID that the options allow
// (any, when they list none: a discoverable sign-in).
func (a *Authenticator) Get(options []byte) ([]byte, error) {
	var o requestOptions
	if err := json.Unmarshal(options, &o); err != nil {
		return nil, err
	}
	var c *credential
	for _, cand := range a.creds {
		if cand.rpID != o.PublicKey.RPID {
			continue
		}
		ok := len(o.PublicKey.Allow) == 0
		for _, al := range o.PublicKey.Allow {
			ok = ok || al.ID == b64.EncodeToString(cand.id)
		}
		if ok {
			c = cand
			break
		}
	}
	if c == nil {
		return nil, errors.New("passkeytest: no credential for these options")
	}
	if !a.ZeroCounter {
		c.counter++
	}
	rpHash := sha256.Sum256([]byte(c.rpID))
	auth := binary.BigEndian.AppendUint32(append(rpHash[:], a.flags(false)), c.counter)
	cd := clientData("webauthn.get", o.PublicKey.Challenge, a.Origin)
	cdHash := sha256.Sum256(cd)
	digest := sha256.Sum256(append(append([]byte{}, auth...), cdHash[:]...))
	sig, err := ecdsa.SignASN1(rand.Reader, c.key, digest[:])
	if err != nil {
		return nil, err
	}
	return json.Marshal(map[string]any{
		"id": b64.EncodeToString(c.id), "rawId": b64.EncodeToString(c.id), "type": "public-key",
		"authenticatorAttachment": "platform", "clientExtensionResults": map[string]any{},
		"response": map[string]any{
			"clientDataJSON": b64.EncodeToString(cd), "authenticatorData": b64.EncodeToString(auth),
			"signature": b64.EncodeToString(sig), "userHandle": b64.EncodeToString(c.userHandle),
		},
	})
}

// SetCounter sets every credential's counter (a clone that lags behind).
func (a *Authenticator) SetCounter(n uint32) {
	for _, c := range a.creds {
		c.counter = n
	}
}
