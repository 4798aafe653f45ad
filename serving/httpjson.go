package serving

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
)

// JSON over HTTP: bounded bodies, strict decoding and the error answers every REST route shares.

// MaxBodyBytes bounds a request body; larger ones get 413.
const MaxBodyBytes = 1 << 20

// httpStatus maps an error of the scoring core to its HTTP status.
func httpStatus(err error) int {
	var se *ScoreError
	if errors.As(err, &se) {
		switch se.Kind {
		case ErrUnknownModel:
			return http.StatusNotFound
		case ErrNotReady:
			return http.StatusServiceUnavailable
		case ErrTooLarge:
			return http.StatusRequestEntityTooLarge
		}
		return http.StatusBadRequest
	}
	return http.StatusInternalServerError
}

// readBody reads a request body of at most MaxBodyBytes (413 beyond).
func readBody(w http.ResponseWriter, r *http.Request) ([]byte, int, error) {
	return readBodyInto(new(bytes.Buffer), w, r)
}

// bodyPool recycles predict request buffers: decoding copies what it keeps out of the body.
var bodyPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// readBodyInto reads the body into buf (the result aliases it).
func readBodyInto(buf *bytes.Buffer, w http.ResponseWriter, r *http.Request) ([]byte, int, error) {
	_, err := buf.ReadFrom(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	b := buf.Bytes()
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		return nil, http.StatusRequestEntityTooLarge, fmt.Errorf("request body over %d bytes", MaxBodyBytes)
	case err != nil:
		return nil, http.StatusBadRequest, fmt.Errorf("read request body: %v", err)
	}
	return b, 0, nil
}

// decodeStrict decodes one JSON object, refusing unknown fields, trailing data and bodies over
// MaxBodyBytes, with an error that names the problem.
func decodeStrict(w http.ResponseWriter, r *http.Request, v any) (int, error) {
	b, code, err := readBody(w, r)
	if err != nil {
		return code, err
	}
	return decodeStrictBytes(b, v)
}

func decodeStrictBytes(b []byte, v any) (int, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var te *json.UnmarshalTypeError
		switch {
		case errors.As(err, &te):
			return http.StatusBadRequest, fmt.Errorf("field %q: got JSON %s, want %s", te.Field, te.Value, te.Type)
		case errors.Is(err, io.EOF):
			return http.StatusBadRequest, errors.New("empty request body")
		}
		return http.StatusBadRequest, fmt.Errorf("invalid JSON: %v", err)
	}
	if dec.More() {
		return http.StatusBadRequest, errors.New("invalid JSON: data after the request object")
	}
	return 0, nil
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func httpError(w http.ResponseWriter, code int, format string, args ...any) {
	writeJSON(w, code, map[string]string{"error": fmt.Sprintf(format, args...)})
}
