package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"strings"
)

// APIClient calls the control-plane API with the caller's bearer token: every change to
// Driftline goes through it (authenticated, authorised and audited there, not here).
type APIClient struct{ URL, Token *string }

// APIFlags declares --api and --token on fs.
func APIFlags(fs *flag.FlagSet) APIClient {
	return APIClient{
		URL:   fs.String("api", Env("DRIFTLINE_API", "http://127.0.0.1:8090"), "control-plane API (env DRIFTLINE_API)"),
		Token: fs.String("token", os.Getenv("DRIFTLINE_TOKEN"), "your bearer token from the identity provider (env DRIFTLINE_TOKEN; development: driftline token --sub <you>)"),
	}
}

// Do sends a JSON request and decodes the JSON answer into out; a refusal is an error with
// the API's words.
func (a APIClient) Do(ctx context.Context, method, path string, in, out any) error {
	if *a.Token == "" {
		return errors.New("a bearer token is required: set DRIFTLINE_TOKEN (or --token); for development: export DRIFTLINE_TOKEN=$(driftline token --sub <you>)")
	}
	var body bytes.Buffer
	if in != nil {
		if err := json.NewEncoder(&body).Encode(in); err != nil {
			return err
		}
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimSuffix(*a.URL, "/")+path, &body)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+*a.Token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("control-plane API %s: %w (is `driftline api` running? make up starts it)", *a.URL, err)
	}
	defer resp.Body.Close()
	var raw json.RawMessage
	_ = json.NewDecoder(resp.Body).Decode(&raw)
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Error string `json:"error"`
		}
		_ = json.Unmarshal(raw, &e)
		return fmt.Errorf("%s %s: HTTP %d: %s%s", method, path, resp.StatusCode, e.Error, nextStep(resp.StatusCode))
	}
	if out != nil {
		return json.Unmarshal(raw, out)
	}
	return nil
}

// nextStep says what to do about a refusal of the API or serving, by its status.
func nextStep(code int) string {
	switch code {
	case http.StatusUnauthorized:
		return " (your token was refused: is DRIFTLINE_TOKEN set and unexpired? development: export DRIFTLINE_TOKEN=$(driftline token --sub <you>))"
	case http.StatusForbidden:
		return " (your identity lacks the permission: the RBAC file, examples/rbac.yaml by default, binds roles to users and groups)"
	case http.StatusConflict:
		return " (the state changed under you: read it again, driftline status or driftline models, and retry)"
	case http.StatusServiceUnavailable:
		return " (not ready yet: is a version deployed? driftline models --model <m>)"
	}
	return ""
}
