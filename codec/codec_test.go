package codec

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/require"
	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
)

func TestRoundTripAndNoPlaintext(t *testing.T) {
	c, err := New("k1", bytes.Repeat([]byte{1}, 32))
	require.NoError(t, err)
	dc := DataConverter(c)
	p, err := dc.ToPayload(map[string]string{"reason": "the holiday freeze is over"})
	require.NoError(t, err)
	require.NotContains(t, string(p.Data), "holiday", "the payload is encrypted")
	require.Equal(t, Encoding, string(p.Metadata[converter.MetadataEncoding]))
	var back map[string]string
	require.NoError(t, dc.FromPayload(p, &back))
	require.Equal(t, "the holiday freeze is over", back["reason"])
	// Another key cannot read it; a tampered payload fails.
	other, _ := New("k2", bytes.Repeat([]byte{2}, 32))
	_, err = other.Decode([]*commonpb.Payload{p})
	require.ErrorContains(t, err, `encrypted with key "k1"`)
	p.Data[len(p.Data)-1] ^= 1
	require.Error(t, dc.FromPayload(p, &back))
	_, err = New("short", []byte("x"))
	require.Error(t, err)
}
