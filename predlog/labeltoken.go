package predlog

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// A label token lets the client that received a prediction, and nobody else, send its
// ground-truth label: an HMAC-SHA256 over model, version, request id and the time of the
// answer, with a key only serving (which mints it) and the canary (which checks the labels it
// uses) hold. Its form is "<version>.<unix ms>.<mac, base64url>".

// LabelKeyBytes is the least key length.
const LabelKeyBytes = 32

// Why a label token was refused (the label_refused_total{reason} metric's values).
const (
	RefusedMissing   = "missing"
	RefusedMalformed = "malformed"
	RefusedAltered   = "altered"
	RefusedExpired   = "expired"
	RefusedDuplicate = "duplicate"
	// RefusedOutOfRange: the label is outside the range the model's registered contract gives
	// its target (or not a finite number).
	RefusedOutOfRange = "out_of_range"
)

// ErrLabelToken is a refused label token; Reason says why.
type ErrLabelToken struct{ Reason, Msg string }

func (e *ErrLabelToken) Error() string { return "label token refused: " + e.Msg }

// LabelToken mints the token of one answer.
func LabelToken(key []byte, model string, version int, requestID string, at time.Time) string {
	ms := at.UnixMilli()
	return fmt.Sprintf("%d.%d.%s", version, ms, labelMAC(key, model, version, requestID, ms))
}

func labelMAC(key []byte, model string, version int, requestID string, ms int64) string {
	m := hmac.New(sha256.New, key)
	fmt.Fprintf(m, "driftline-label\x00%s\x00%d\x00%s\x00%d", model, version, requestID, ms)
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil)[:16])
}

// VerifyLabelToken checks a token for model and request id, not older than ttl at now; it
// returns the version that answered.
func VerifyLabelToken(key []byte, token, model, requestID string, now time.Time, ttl time.Duration) (int, error) {
	if token == "" {
		return 0, &ErrLabelToken{RefusedMissing, "label_token is required (it came with the prediction)"}
	}
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return 0, &ErrLabelToken{RefusedMalformed, "not a label token"}
	}
	version, err1 := strconv.Atoi(parts[0])
	ms, err2 := strconv.ParseInt(parts[1], 10, 64)
	// Canonical only: "02" or "+2" would verify with the MAC of 2 while another string, so
	// one answer would have several tokens (and several labels past the duplicate check).
	if errors.Join(err1, err2) != nil || strconv.Itoa(version) != parts[0] || strconv.FormatInt(ms, 10) != parts[1] {
		return 0, &ErrLabelToken{RefusedMalformed, "not a label token"}
	}
	if !hmac.Equal([]byte(parts[2]), []byte(labelMAC(key, model, version, requestID, ms))) {
		return 0, &ErrLabelToken{RefusedAltered, fmt.Sprintf("it does not match model %s, request %s", model, requestID)}
	}
	if age := now.Sub(time.UnixMilli(ms)); age > ttl {
		return 0, &ErrLabelToken{RefusedExpired, fmt.Sprintf("issued %s ago, labels are taken for %s", age.Round(time.Second), ttl)}
	}
	return version, nil
}
