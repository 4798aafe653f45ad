package api

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"

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
