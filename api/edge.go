package api

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/driftline/driftline/edge/agent"
	"github.com/driftline/driftline/objstore"
	"github.com/driftline/driftline/registry"
)

// edgeBundle serves the signed edge bundle of the model's production version to devices (the
// agent's --source): its ETag is the object's, so a device asking with If-None-Match gets a
// 304 until production changes. The caller needs view on the model.
func (s *Server) edgeBundle(w http.ResponseWriter, r *http.Request) {
	c, ok := s.begin(w, r, ActView, r.PathValue("model"))
	if !ok {
		return
	}
	d, _, err := s.Registry.Deployment(r.Context(), c.model)
	if err != nil {
		c.fail(err)
		return
	}
	if d.Production == 0 {
		c.fail(fmt.Errorf("%w: model %s has no production version", registry.ErrNotFound, c.model))
		return
	}
	data, obj, err := objstore.ReadAll(r.Context(), s.Registry.Store, registry.EdgeBundleKey(c.model, d.Production))
	if errors.Is(err, objstore.ErrNotFound) {
		c.fail(fmt.Errorf("%w: version %d of %s has no edge bundle (the pipeline workers sign one at registration with --edge-signing-key-file)",
			registry.ErrNotFound, d.Production, c.model))
		return
	}
	if err != nil {
		c.fail(err)
		return
	}
	etag := strconv.Quote(obj.ETag)
	w.Header().Set("ETag", etag)
	w.Header().Set("X-Driftline-Version", strconv.Itoa(d.Production))
	if r.Header.Get("If-None-Match") == etag {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	_, _ = w.Write(data)
}

// ActEdgeReport lets a device upload its log of predictions and labels (the edge role).
const ActEdgeReport = "edge_report"

// EdgeLogKey is where a device's log segment n is kept: the device is named by a hash of its
// token's subject (never by anything the device claims).
func EdgeLogKey(model, subject string, n uint64) string {
	return fmt.Sprintf("edge/%s/devices/%s/log/%020d.jsonl", model, DeviceHash(subject), n)
}

// DeviceHash names a device in object keys and request ids: the first 12 bytes of the
// SHA-256 of its token's subject, hex.
func DeviceHash(subject string) string {
	sum := sha256.Sum256([]byte(subject))
	return hex.EncodeToString(sum[:12])
}

// recordRefusal says why a device's record cannot be kept ("": it can).
func recordRefusal(rec agent.Record, size int, inputsStay bool, model string) string {
	switch {
	case inputsStay && len(rec.Inputs) > 0:
		return fmt.Sprintf("a record with input values: the spec of %s keeps data on the devices (edge.data_stays_on_device)", model)
	case rec.Kind == "sketch" && rec.Sketch == nil:
		return "a sketch record without its sketch"
	case rec.Kind == "sketch" && size > agent.SketchMaxBytes+256:
		return fmt.Sprintf("a sketch of %d bytes: at most %d", size, agent.SketchMaxBytes)
	case rec.Kind != "sketch" && rec.Sketch != nil:
		return "a sketch in a " + rec.Kind + " record"
	}
	return ""
}

// inputsStay says whether the model's spec keeps data on the devices.
func (c *call) inputsStay() bool {
	sp, _, _, err := c.s.Registry.CurrentSpec(c.r.Context(), c.model)
	return err == nil && sp.Edge.DataStaysOnDevice
}

// edgeLog keeps segment n of the calling device's log (the model's endpoint, for devices
// outside a fleet).
func (s *Server) edgeLog(w http.ResponseWriter, r *http.Request) {
	c, ok := s.begin(w, r, ActEdgeReport, r.PathValue("model"))
	if !ok {
		return
	}
	c.keepLog(func(n uint64, _ time.Time) string { return EdgeLogKey(c.model, c.who.ID, n) }, c.inputsStay())
}

// keepLog keeps segment n (the path's {segment}) of the calling device's log at key(n, the
// time of its first record), once:
// the same segment again is accepted (200) and changes nothing, so a device retrying after a
// lost answer sends nothing twice; different content under a number already kept is refused
// (409). Every line must be a prediction or a label record (agent.Record, no other field); a
// bad one is refused naming its line, and so is one with input values when the model's spec
// keeps data on the devices (edge.data_stays_on_device), or a drift sketch over
// agent.SketchMaxBytes. An upload is data, as serving's prediction log is:
// kept create-once under the device's identity, not audited one by one (a refusal is).
func (c *call) keepLog(keyOf func(n uint64, first time.Time) string, inputsStay bool) {
	w, r := c.w, c.r
	n, err := strconv.ParseUint(r.PathValue("segment"), 10, 64)
	if err != nil {
		c.fail(fmt.Errorf("%w: segment %q is not a number", errBadRequest, clip(r.PathValue("segment"), 24)))
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		c.fail(fmt.Errorf("%w: segment body: %v", errBadRequest, err))
		return
	}
	lines := 0
	var first time.Time
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(make([]byte, 0, 4096), maxBody)
	for sc.Scan() {
		lines++
		dec := json.NewDecoder(bytes.NewReader(sc.Bytes()))
		dec.DisallowUnknownFields()
		var rec agent.Record
		if err := dec.Decode(&rec); err != nil || (rec.Kind != "prediction" && rec.Kind != "label" && rec.Kind != "sketch") || rec.ID == "" {
			c.fail(fmt.Errorf("%w: segment %d line %d: want a prediction, label or sketch record with an id (%v)", errBadRequest, n, lines, err))
			return
		}
		if why := recordRefusal(rec, len(sc.Bytes()), inputsStay, c.model); why != "" {
			c.fail(fmt.Errorf("%w: segment %d line %d: %s", errBadRequest, n, lines, why))
			return
		}
		if lines == 1 {
			first = rec.Time
		}
	}
	if lines == 0 {
		c.fail(fmt.Errorf("%w: segment %d is empty", errBadRequest, n))
		return
	}
	key := keyOf(n, first)
	created, err := objstore.CreateOnce(r.Context(), c.s.Registry.Store, key, body, "application/x-ndjson")
	if err != nil {
		c.fail(err)
		return
	}
	if !created {
		kept, _, err := objstore.ReadAll(r.Context(), c.s.Registry.Store, key)
		if err != nil {
			c.fail(err)
			return
		}
		if !bytes.Equal(kept, body) {
			c.fail(fmt.Errorf("%w: segment %d of this device is kept already with other content", errConflict, n))
			return
		}
	}
	code := http.StatusOK
	if created {
		code = http.StatusCreated
	}
	reply(w, code, map[string]any{"segment": n, "records": lines, "created": created})
}
