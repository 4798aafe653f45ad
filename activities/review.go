package activities

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/driftline/driftline/audit"
	"github.com/driftline/driftline/internal/keys"
	"github.com/driftline/driftline/objstore"
	"github.com/driftline/driftline/pipeline"
	"github.com/driftline/driftline/registry"
)

// ReviewAlert is the alert name a fairness review raises in Alertmanager.
const ReviewAlert = "FairnessReview"

// escalatedAlertLife is how long an escalated review's page stays active in Alertmanager
// without being closed (Alertmanager resolves alerts at their endsAt).
const escalatedAlertLife = 7 * 24 * time.Hour

// reviewKey is where a review's latest state is kept.
func reviewKey(model, id string) string {
	return keys.Review(model, id)
}

// RecordReview audits a fairness review's event (opened, escalated, closed: the
// acknowledgement with its attestation id) and stores the review at
// reports/<model>/monitor/reviews/<id>.json. Idempotent: a retry appends nothing new.
func (m *Monitoring) RecordReview(ctx context.Context, n pipeline.ReviewNotice) error {
	r := n.Review
	body, err := json.MarshalIndent(r, "", " ")
	if err != nil {
		return invalid("review %s: %v", r.ID, err)
	}
	if _, err := m.Store.Put(ctx, reviewKey(r.Model, r.ID), body, objstore.PutOptions{ContentType: "application/json"}); err != nil {
		return classify("store the fairness review", err)
	}
	rec := audit.Record{Actor: pipeline.MonitorWorkflowID(r.Model), Action: "fairness_review_" + n.Event, Model: r.Model, Version: r.Version,
		Reason:  fmt.Sprintf("disparate impact of %s %.3f [%.3f, %.3f] under the floor %.2f", r.Attribute, r.DisparateImpact, r.Low, r.High, r.Floor),
		Details: map[string]any{"review": r.ID, "report": r.Report, "deadline": r.Deadline, "reviewers": r.Reviewers, "escalate_to": r.EscalateTo}}
	if n.Event == "closed" {
		rec.Actor, rec.Decision, rec.Reason = r.By, r.Decision, r.Reason
		rec.Details["attestation_id"], rec.Details["groups"], rec.Details["outcome"], rec.Details["escalated"] = r.AttestationID, r.Groups, r.Outcome, r.Escalated
	}
	if _, err := m.Registry.Audit.Append(ctx, "review/"+r.Model+"/"+r.ID+"/"+n.Event, rec); err != nil {
		return classify("audit the fairness review", err)
	}
	if m.Metrics != nil {
		open, esc := 1.0, 0.0
		if r.Escalated {
			esc = 1
		}
		if n.Event == "closed" {
			open, esc = 0, 0
		}
		m.Metrics.ReviewOpen.WithLabelValues(r.Model).Set(open)
		m.Metrics.ReviewEscalated.WithLabelValues(r.Model).Set(esc)
	}
	return nil
}

// NotifyReview tells people about a review's event: a Slack-compatible message to the
// approval webhook, and an alert to Alertmanager (FairnessReview: severity ticket while open,
// page once escalated; resolved when closed). Either is skipped when not configured.
func (m *Monitoring) NotifyReview(ctx context.Context, n pipeline.ReviewNotice) error {
	var errs []error
	if m.Webhook != "" {
		errs = append(errs, m.reviewWebhook(ctx, n))
	}
	if m.Alertmanager != "" {
		errs = append(errs, m.reviewAlert(ctx, n))
	}
	return errors.Join(errs...)
}

func (m *Monitoring) reviewWebhook(ctx context.Context, n pipeline.ReviewNotice) error {
	r := n.Review
	var text string
	ack := fmt.Sprintf("`driftline monitor ack --model %s --review %s --decision accept|retrain|rollback --reason \"...\"`", r.Model, r.ID)
	switch n.Event {
	case "opened":
		text = fmt.Sprintf("Driftline: fairness review %s of %s v%d: disparate impact of %s %.3f [%.3f, %.3f] is under the floor %.2f (report %s). Reviewers: %s. Acknowledge by %s with %s.",
			r.ID, r.Model, r.Version, r.Attribute, r.DisparateImpact, r.Low, r.High, r.Floor, r.Report, strings.Join(r.Reviewers, ", "), r.Deadline.UTC().Format(time.RFC3339), ack)
	case "escalated":
		text = fmt.Sprintf("Driftline: ESCALATED fairness review %s of %s v%d, unacknowledged since %s (deadline %s). Escalated to %s; reviewers: %s. Acknowledge with %s.",
			r.ID, r.Model, r.Version, r.OpenedAt.UTC().Format(time.RFC3339), r.Deadline.UTC().Format(time.RFC3339), strings.Join(r.EscalateTo, ", "), strings.Join(r.Reviewers, ", "), ack)
	default:
		text = fmt.Sprintf("Driftline: fairness review %s of %s v%d closed: %s by %s (%s): %s", r.ID, r.Model, r.Version, r.Decision, r.By, r.Reason, r.Outcome)
	}
	body, _ := json.Marshal(map[string]any{"text": text, "event": n.Event, "review": r})
	return postJSON(ctx, "review webhook", m.Webhook, body, r.ID+"/"+n.Event)
}

// amAlert is an alert as Alertmanager's API v2 takes it (POST /api/v2/alerts).
type amAlert struct {
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations"`
	StartsAt     time.Time         `json:"startsAt"`
	EndsAt       time.Time         `json:"endsAt"`
	GeneratorURL string            `json:"generatorURL,omitempty"`
}

func (m *Monitoring) reviewAlert(ctx context.Context, n pipeline.ReviewNotice) error {
	r := n.Review
	now := time.Now().UTC()
	alert := func(severity string, starts, ends time.Time) amAlert {
		if starts.After(now) {
			starts = now
		}
		if !ends.After(starts) { // Alertmanager wants startsAt before endsAt
			ends = starts.Add(time.Millisecond)
		}
		return amAlert{Labels: map[string]string{"alertname": ReviewAlert, "model": r.Model, "review": r.ID, "severity": severity},
			Annotations: map[string]string{
				"summary": fmt.Sprintf("fairness review %s of %s v%d: disparate impact of %s %.3f [%.3f, %.3f] under %.2f", r.ID, r.Model, r.Version,
					r.Attribute, r.DisparateImpact, r.Low, r.High, r.Floor),
				"report":      r.Report,
				"reviewers":   strings.Join(r.Reviewers, ", "),
				"escalate_to": strings.Join(r.EscalateTo, ", "),
				"acknowledge": "driftline monitor ack --model " + r.Model + " --review " + r.ID + " --decision accept|retrain|rollback --reason ...",
			}, StartsAt: starts, EndsAt: ends}
	}
	var alerts []amAlert
	switch n.Event {
	case "opened": // a ticket until the deadline; the escalation's page follows it
		alerts = []amAlert{alert("ticket", r.OpenedAt, r.Deadline)}
	case "escalated":
		alerts = []amAlert{alert("ticket", r.OpenedAt, now), alert("page", r.EscalatedAt, r.EscalatedAt.Add(escalatedAlertLife))}
	default: // closed: both resolve now
		alerts = []amAlert{alert("ticket", r.OpenedAt, now)}
		if r.Escalated {
			alerts = append(alerts, alert("page", r.EscalatedAt, now))
		}
	}
	body, _ := json.Marshal(alerts)
	return postJSON(ctx, "alertmanager", strings.TrimSuffix(m.Alertmanager, "/")+"/api/v2/alerts", body, "")
}

// postJSON posts a JSON body; an answer of 300 or more is an error (retried by the activity).
func postJSON(ctx context.Context, what, target string, body []byte, idempotencyKey string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return invalid("%s (%s): not a URL", what, redactURL(target))
	}
	req.Header.Set("Content-Type", "application/json")
	if idempotencyKey != "" {
		req.Header.Set("Idempotency-Key", idempotencyKey)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		// The error names the URL, and a webhook's URL is its secret: it would reach the
		// activity's failure in Temporal history and the logs.
		var ue *url.Error
		if errors.As(err, &ue) {
			ue.URL = redactURL(ue.URL)
		}
		return fmt.Errorf("%s: %w", what, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		return fmt.Errorf("%s (%s) answered HTTP %d", what, redactURL(target), resp.StatusCode)
	}
	return nil
}

// redactURL keeps a URL's scheme and host: a webhook's path and query are its secret.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "(redacted)"
	}
	if u.Path == "" && u.RawQuery == "" {
		return u.Scheme + "://" + u.Host
	}
	return u.Scheme + "://" + u.Host + "/(redacted)"
}

// ReviewRollback rolls production back to the version before it, for a review's decision,
// only while the reviewed version is still production (a retry after the change finds it
// done and changes nothing). It returns what it did.
func (m *Monitoring) ReviewRollback(ctx context.Context, in pipeline.ReviewRollbackInput) (string, error) {
	if why := m.rollbackRefusal(ctx, in); why != "" {
		if _, err := m.Registry.Audit.Append(ctx, "review/"+in.Model+"/"+in.Review+"/rollback-refused/"+in.Origin+"/"+in.Attestation+"/"+why, audit.Record{
			Actor: pipeline.MonitorWorkflowID(in.Model), Action: "review_rollback_refused", Model: in.Model, Version: in.FromVersion,
			Decision: "refused", Reason: why, Details: map[string]any{"review": in.Review, "claimed_by": in.Actor}}); err != nil {
			return "", classify("audit the refused rollback", err)
		}
		return "", invalid("rollback for review %s refused: %s", in.Review, why)
	}
	var did string
	_, err := m.Registry.UpdateDeployment(ctx, in.Model, registry.Change{Action: registry.TransRollback, Actor: in.Actor, RunID: in.Review,
		Reason: in.Reason, Key: "review/" + in.Model + "/" + in.Review + "/rollback"}, func(d *registry.Deployment) (bool, error) {
		switch {
		case d.Production == in.FromVersion:
			prev := d.Previous
			changed, err := d.Rollback()
			did = fmt.Sprintf("production rolled back from v%d to v%d", in.FromVersion, prev)
			return changed, err
		case d.RunID == in.Review && d.Previous == in.FromVersion:
			did = fmt.Sprintf("production rolled back from v%d to v%d", in.FromVersion, d.Production)
			return false, nil // done by an earlier attempt
		}
		return false, fmt.Errorf("production of %s is v%d, not the reviewed v%d: not rolled back: %w", in.Model, d.Production, in.FromVersion, registry.ErrConflict)
	})
	if err != nil {
		return "", classify("roll back for the fairness review", err)
	}
	return did, nil
}

// rollbackRefusal checks, with the worker's own keys, that the monitor asking for the rollback
// was started through the control-plane API and that the acknowledgement is an attested
// rollback of exactly this review; "" when both hold. The workflow checked the same, but its
// input is whatever the client that started it sent.
func (m *Monitoring) rollbackRefusal(ctx context.Context, in pipeline.ReviewRollbackInput) string {
	if m.Keys == nil {
		return "the worker has no attestation keys (--attestation-keys) to verify the monitor and the acknowledgement"
	}
	keys, err := m.Keys(ctx)
	if err != nil {
		return "the attestation keys could not be read: " + err.Error()
	}
	now := time.Now()
	if _, err := pipeline.VerifyOrigin(in.Origin, keys, in.Model, time.Time{}, now); err != nil {
		return "the monitor was not started through the control-plane API: " + err.Error()
	}
	// The acknowledgement may have expired since the monitor took it (a slow retry): its
	// signature, kind, model, review and decision are what matter here.
	att, err := pipeline.VerifyAttestation(in.Attestation, keys, time.Unix(0, 0))
	switch {
	case err != nil:
		return "the acknowledgement does not verify: " + err.Error()
	case att.Model != in.Model || att.Review != in.Review || att.Decision != pipeline.ReviewRollback || att.Version != in.FromVersion:
		return fmt.Sprintf("the acknowledgement attests %s of review %q (%s v%d), not a rollback of review %s (%s v%d)",
			att.Decision, att.Review, att.Model, att.Version, in.Review, in.Model, in.FromVersion)
	}
	return ""
}
