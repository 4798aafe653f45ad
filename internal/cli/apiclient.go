package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/spf13/pflag"
	"go.temporal.io/sdk/client"

	"github.com/driftline/driftline/api"
	"github.com/driftline/driftline/internal/config"
)

// APIClient calls the control-plane API with the caller's bearer token: every change to
// Driftline goes through it (authenticated, authorised and audited there, not here).
type APIClient struct{ URL, Token *string }

// APIFlags declares --api and --token on fs.
func APIFlags(fs *pflag.FlagSet) APIClient {
	a := APIClient{
		URL:   EnvFlag(fs, "api", "DRIFTLINE_API", "http://127.0.0.1:8090", "control-plane API"),
		Token: new(string),
	}
	config.SecretEnv(fs, a.Token, "token", "DRIFTLINE_TOKEN", "your bearer token from the identity provider (development: driftline token --sub <you>)")
	return a
}

// Client is the API client of these flags (api.Client, the one client of the API's routes).
func (a APIClient) Client() (*api.Client, error) {
	if *a.Token == "" {
		return nil, errors.New("a bearer token is required: set DRIFTLINE_TOKEN (or --token); for development: export DRIFTLINE_TOKEN=$(driftline token --sub <you>)")
	}
	return &api.Client{BaseURL: *a.URL, Token: *a.Token}, nil
}

// call runs f with the API client of these flags; a refusal gets what to do next.
func (a APIClient) call(f func(c *api.Client) error) error {
	c, err := a.Client()
	if err != nil {
		return err
	}
	return hint(f(c))
}

// reportInto decodes one of a run's reports, as the API answers it, into v.
func reportInto(ctx context.Context, c *api.Client, model, run, name string, v any) error {
	raw, err := c.Report(ctx, model, run, name)
	if err != nil {
		return err
	}
	return json.Unmarshal(raw, v)
}

// hint adds what to do next to an API error, and where the API is to a connection error.
func hint(err error) error {
	var e *api.Error
	switch {
	case err == nil:
		return nil
	case errors.As(err, &e):
		return fmt.Errorf("%w%s", err, nextStep(e.StatusCode))
	}
	return fmt.Errorf("%w (is `driftline api` running? make up starts it)", err)
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

// viaAPIOrTemporal reads through the API when the caller has a token (view on the model,
// checked there), else straight from Temporal with the caller's own connection.
func viaAPIOrTemporal[T any](a APIClient, viaAPI func(*api.Client) (T, error), direct func(client.Client) (T, error)) (T, error) {
	var out T
	if *a.Token != "" {
		err := a.call(func(c *api.Client) (err error) { out, err = viaAPI(c); return })
		return out, err
	}
	c, err := config.TemporalClient()
	if err != nil {
		return out, err
	}
	defer c.Close()
	return direct(c)
}
