package edge

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
)

// Magic opens every bundle: "DLEDGE" and the format version, a little-endian uint16.
const (
	magic         = "DLEDGE"
	FormatVersion = 1
	headerSize    = 8 // magic and version
)

// Kinds of model and objectives in a bundle's body.
const (
	KindTrees  = 1
	KindLinear = 2

	ObjectiveIdentity = 0
	ObjectiveLogistic = 1
)

// Manifest describes a bundle; it is signed with the body.
type Manifest struct {
	Model   string `json:"model"`
	Version int    `json:"version"`
	// Counter rises with every bundle the registry signs for the model: a device refuses one
	// below the counter it has installed, so an old bundle cannot be replayed to it.
	Counter    uint64   `json:"counter"`
	Features   []string `json:"features"`
	Kind       string   `json:"kind"` // trees or linear
	Objective  string   `json:"objective,omitempty"`
	BodySHA256 string   `json:"body_sha256"`
	// KeyID names the key that signed it: the first 8 bytes of the SHA-256 of the public key, hex.
	KeyID string `json:"key_id"`
	// The float artifact it was made from, and its size (the bundle's is the file's).
	ArtifactSHA256 string `json:"artifact_sha256,omitempty"`
	ArtifactBytes  int64  `json:"artifact_bytes,omitempty"`
	Created        string `json:"created,omitempty"`
}

// KeyID is the id of a public key in manifests.
func KeyID(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return hex.EncodeToString(sum[:8])
}

// ErrBundle marks every refusal of a bundle.
var ErrBundle = errors.New("edge bundle refused")

func refuse(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrBundle, fmt.Sprintf(format, args...))
}

// Seal writes a bundle: the header, the manifest (its body hash and key id filled in here),
// the body, and the Ed25519 signature of all of them.
func Seal(man Manifest, body []byte, key ed25519.PrivateKey) ([]byte, error) {
	sum := sha256.Sum256(body)
	man.BodySHA256 = hex.EncodeToString(sum[:])
	man.KeyID = KeyID(key.Public().(ed25519.PublicKey))
	mj, err := json.Marshal(man)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	b.WriteString(magic)
	_ = binary.Write(&b, binary.LittleEndian, uint16(FormatVersion))
	_ = binary.Write(&b, binary.LittleEndian, uint32(len(mj)))
	b.Write(mj)
	_ = binary.Write(&b, binary.LittleEndian, uint32(len(body)))
	b.Write(body)
	b.Write(ed25519.Sign(key, b.Bytes()))
	return b.Bytes(), nil
}

// Open checks a bundle's framing and signature against the keys (any of them, matched by key
// id: a rotation installs the new key beside the old) and returns its manifest and body.
func Open(data []byte, keys []ed25519.PublicKey) (Manifest, []byte, error) {
	var man Manifest
	if len(data) < headerSize+4 || string(data[:len(magic)]) != magic {
		return man, nil, refuse("not an edge bundle (no DLEDGE header at offset 0)")
	}
	if v := binary.LittleEndian.Uint16(data[6:]); v != FormatVersion {
		return man, nil, refuse("format version %d at offset 6; this runtime reads %d", v, FormatVersion)
	}
	mlen := int64(binary.LittleEndian.Uint32(data[8:]))
	bodyAt := 12 + mlen + 4
	if int64(len(data)) < bodyAt {
		return man, nil, refuse("truncated: the manifest of %d bytes at offset 12 runs past the end (%d bytes)", mlen, len(data))
	}
	blen := int64(binary.LittleEndian.Uint32(data[12+mlen:]))
	sigAt := bodyAt + blen
	if int64(len(data)) != sigAt+ed25519.SignatureSize {
		return man, nil, refuse("truncated or padded: %d bytes, the framing says %d", len(data), sigAt+ed25519.SignatureSize)
	}
	if err := json.Unmarshal(data[12:12+mlen], &man); err != nil {
		return man, nil, refuse("manifest at offset 12: %v", err)
	}
	var key ed25519.PublicKey
	for _, k := range keys {
		if KeyID(k) == man.KeyID {
			key = k
		}
	}
	if key == nil {
		return man, nil, refuse("signed by key %s, which this device does not trust", man.KeyID)
	}
	if !ed25519.Verify(key, data[:sigAt], data[sigAt:]) {
		return man, nil, refuse("bad signature at offset %d: the bundle was altered or not signed by key %s", sigAt, man.KeyID)
	}
	body := data[bodyAt:sigAt]
	if sum := sha256.Sum256(body); hex.EncodeToString(sum[:]) != man.BodySHA256 {
		return man, nil, refuse("body hash differs from the manifest's")
	}
	return man, body, nil
}

// reader reads the little-endian body, remembering the first error with its offset.
type reader struct {
	b   []byte
	off int
	err error
}

func (r *reader) need(n int, what string) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || r.off+n > len(r.b) {
		r.err = refuse("body truncated reading %s at offset %d (%d bytes left, %d needed)", what, r.off, len(r.b)-r.off, n)
		return nil
	}
	s := r.b[r.off : r.off+n]
	r.off += n
	return s
}

func (r *reader) u8(what string) uint8 {
	if s := r.need(1, what); s != nil {
		return s[0]
	}
	return 0
}

func (r *reader) u32(what string) uint32 {
	if s := r.need(4, what); s != nil {
		return binary.LittleEndian.Uint32(s)
	}
	return 0
}

func (r *reader) u64(what string) uint64 {
	if s := r.need(8, what); s != nil {
		return binary.LittleEndian.Uint64(s)
	}
	return 0
}

func (r *reader) f64(what string) float64 { return math.Float64frombits(r.u64(what)) }

// count reads a uint32 count bounded by what the rest of the body can hold at size bytes each.
func (r *reader) count(what string, size int) int {
	n := int(r.u32(what))
	if r.err == nil && n*size > len(r.b)-r.off {
		r.err = refuse("%s at offset %d: %d entries cannot fit in the %d bytes left", what, r.off-4, n, len(r.b)-r.off)
		return 0
	}
	return n
}
