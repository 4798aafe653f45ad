package codec

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
)

// Encoding marks an encrypted payload; KeyIDMeta names the key that encrypted it.
const (
	Encoding  = "binary/driftline-aes256gcm"
	KeyIDMeta = "driftline-key-id"
)

// AESGCM is a PayloadCodec: Encode seals each payload (its metadata and data, as a proto)
// under the key; Decode opens payloads of its encoding and leaves others as they are.
type AESGCM struct {
	keyID string
	aead  cipher.AEAD
}

var _ converter.PayloadCodec = (*AESGCM)(nil)

// New makes the codec of a 32-byte key; keyID names it in each payload (for rotation).
func New(keyID string, key []byte) (*AESGCM, error) {
	if len(key) != 32 {
		return nil, fmt.Errorf("payload key: %d bytes, want 32 (AES-256)", len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &AESGCM{keyID: keyID, aead: aead}, nil
}

// Load reads a hex-encoded 32-byte key from a file; the key id is the file's base name.
func Load(path string) (*AESGCM, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("payload key: %w", err)
	}
	key, err := hex.DecodeString(strings.TrimSpace(string(b)))
	if err != nil {
		return nil, fmt.Errorf("payload key %s: not hex: %w", path, err)
	}
	name := path[strings.LastIndex(path, "/")+1:]
	return New(strings.TrimSuffix(name, ".key"), key)
}

// Encode implements converter.PayloadCodec.
func (c *AESGCM) Encode(payloads []*commonpb.Payload) ([]*commonpb.Payload, error) {
	out := make([]*commonpb.Payload, len(payloads))
	for i, p := range payloads {
		plain, err := p.Marshal()
		if err != nil {
			return nil, err
		}
		nonce := make([]byte, c.aead.NonceSize())
		if _, err := rand.Read(nonce); err != nil {
			return nil, err
		}
		out[i] = &commonpb.Payload{
			Metadata: map[string][]byte{converter.MetadataEncoding: []byte(Encoding), KeyIDMeta: []byte(c.keyID)},
			Data:     c.aead.Seal(nonce, nonce, plain, []byte(c.keyID)),
		}
	}
	return out, nil
}

// Decode implements converter.PayloadCodec.
func (c *AESGCM) Decode(payloads []*commonpb.Payload) ([]*commonpb.Payload, error) {
	out := make([]*commonpb.Payload, len(payloads))
	for i, p := range payloads {
		if string(p.GetMetadata()[converter.MetadataEncoding]) != Encoding {
			out[i] = p
			continue
		}
		if id := string(p.GetMetadata()[KeyIDMeta]); id != c.keyID {
			return nil, fmt.Errorf("payload encrypted with key %q, this codec holds %q", id, c.keyID)
		}
		n := c.aead.NonceSize()
		if len(p.Data) < n {
			return nil, errors.New("encrypted payload too short")
		}
		plain, err := c.aead.Open(nil, p.Data[:n], p.Data[n:], []byte(c.keyID))
		if err != nil {
			return nil, fmt.Errorf("decrypt payload: %w", err)
		}
		var dp commonpb.Payload
		if err := dp.Unmarshal(plain); err != nil {
			return nil, err
		}
		out[i] = &dp
	}
	return out, nil
}

// DataConverter is Temporal's default converter with payloads encrypted by c.
func DataConverter(c *AESGCM) converter.DataConverter {
	return converter.NewCodecDataConverter(converter.GetDefaultDataConverter(), c)
}
