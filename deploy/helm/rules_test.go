package helm

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/yaml"
)

// checkRules holds every render to what the chart promises: pods that run as non-root on a
// read-only root filesystem with every capability dropped, probes and memory limits on every
// container, no secret in an environment value, selectors and targets that name what exists,
// serving's grace period longer than its drain, and the Prometheus rules promtool accepts.
func checkRules(t *testing.T, objs []object) {
	t.Helper()
	deployments := map[string]*appsv1.Deployment{}
	for _, o := range objs {
		if d, ok := o.obj.(*appsv1.Deployment); ok {
			deployments[d.Name] = d
			checkPod(t, d.Name, d.Spec.Template.Spec)
		}
	}
	for _, o := range objs {
		switch x := o.obj.(type) {
		case *corev1.Service:
			d := selected(t, deployments, "Service "+x.Name, metav1.SetAsLabelSelector(x.Spec.Selector))
			for _, p := range x.Spec.Ports {
				if p.TargetPort.StrVal != "" && !hasPort(d, p.TargetPort.StrVal) {
					t.Errorf("Service %s targets port %q that %s does not declare", x.Name, p.TargetPort.StrVal, d.Name)
				}
			}
		case *policyv1.PodDisruptionBudget:
			selected(t, deployments, "PodDisruptionBudget "+x.Name, x.Spec.Selector)
		case *autoscalingv2.HorizontalPodAutoscaler:
			scaledTarget(t, deployments, "HorizontalPodAutoscaler "+x.Name, x.Spec.ScaleTargetRef.Name)
		case *scaledObject:
			scaledTarget(t, deployments, "ScaledObject "+x.Metadata.Name, x.Spec.ScaleTargetRef.Name)
			checkScaledObject(t, x, deployments[x.Spec.ScaleTargetRef.Name])
		case *prometheusRule:
			promtoolAccepts(t, x)
		case *corev1.ConfigMap:
			for k, v := range x.Data {
				if strings.HasSuffix(k, ".json") && !json.Valid([]byte(v)) {
					t.Errorf("ConfigMap %s: %s is not JSON", x.Name, k)
				}
			}
		}
	}
	if d, ok := findServing(deployments); ok {
		checkDrain(t, d)
	}
}

func checkPod(t *testing.T, name string, pod corev1.PodSpec) {
	t.Helper()
	if sc := pod.SecurityContext; sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot {
		t.Errorf("%s: the pod must run as non-root", name)
	}
	if pod.AutomountServiceAccountToken == nil || *pod.AutomountServiceAccountToken {
		t.Errorf("%s: Driftline does not call the Kubernetes API; the service account token must not be mounted", name)
	}
	volumes := map[string]bool{}
	for _, v := range pod.Volumes {
		volumes[v.Name] = true
	}
	for _, c := range pod.Containers {
		where := name + "/" + c.Name
		sc := c.SecurityContext
		if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
			sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation || sc.Capabilities == nil ||
			len(sc.Capabilities.Drop) != 1 || sc.Capabilities.Drop[0] != "ALL" {
			t.Errorf("%s: read-only root filesystem, no privilege escalation and every capability dropped", where)
		}
		if c.LivenessProbe == nil {
			t.Errorf("%s: no liveness probe", where)
		}
		if _, ok := c.Resources.Limits[corev1.ResourceMemory]; !ok {
			t.Errorf("%s: no memory limit (the Go heap's soft limit is 90%% of it)", where)
		}
		if strings.HasSuffix(c.Image, ":latest") || !strings.Contains(c.Image, ":") && !strings.Contains(c.Image, "@sha256:") {
			t.Errorf("%s: image %q is not pinned", where, c.Image)
		}
		for _, m := range c.VolumeMounts {
			if !volumes[m.Name] {
				t.Errorf("%s mounts volume %q that the pod does not have", where, m.Name)
			}
		}
		for _, e := range c.Env {
			if secretName.MatchString(e.Name) && !strings.HasSuffix(e.Name, "_FILE") && e.Name != "DRIFTLINE_ATTESTATION_KEYS" &&
				(e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil) {
				t.Errorf("%s: %s must come from a Secret (secretKeyRef) or a mounted file, not a value", where, e.Name)
			}
		}
	}
}

// secretName matches environment variables that carry secrets.
var secretName = regexp.MustCompile(`(?i)(KEY|SECRET|PASSWORD|TOKEN|WEBHOOK)(_FILE)?$`)

func hasPort(d *appsv1.Deployment, name string) bool {
	for _, c := range d.Spec.Template.Spec.Containers {
		for _, p := range c.Ports {
			if p.Name == name {
				return true
			}
		}
	}
	return false
}

// selected is the one Deployment whose pods the selector picks.
func selected(t *testing.T, deployments map[string]*appsv1.Deployment, what string, sel *metav1.LabelSelector) *appsv1.Deployment {
	t.Helper()
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil || s.Empty() {
		t.Fatalf("%s: bad or empty selector: %v", what, err)
	}
	var found []*appsv1.Deployment
	for _, d := range deployments {
		if s.Matches(labels.Set(d.Spec.Template.Labels)) {
			found = append(found, d)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%s selects %d Deployments' pods, want 1", what, len(found))
	}
	return found[0]
}

// scaledTarget requires an autoscaler's target to exist and leave its replicas to it.
func scaledTarget(t *testing.T, deployments map[string]*appsv1.Deployment, what, target string) {
	t.Helper()
	d, ok := deployments[target]
	if !ok {
		t.Fatalf("%s scales %q, which is not rendered", what, target)
	}
	if d.Spec.Replicas != nil {
		t.Errorf("%s: Deployment %s also sets replicas: each upgrade would reset the autoscaler's count", what, target)
	}
}

// checkScaledObject requires the KEDA trigger to read the queue the Deployment's kind polls.
func checkScaledObject(t *testing.T, so *scaledObject, d *appsv1.Deployment) {
	t.Helper()
	queues := map[string]string{"orchestration": "driftline-pipeline", "data": "driftline-pipeline-data", "training": "driftline-pipeline-training"}
	var kind string
	for _, a := range d.Spec.Template.Spec.Containers[0].Args {
		if k, ok := strings.CutPrefix(a, "--kinds="); ok {
			kind = k
		}
	}
	if len(so.Spec.Triggers) != 1 || so.Spec.Triggers[0].Type != "temporal" {
		t.Fatalf("ScaledObject %s: want one temporal trigger", so.Metadata.Name)
	}
	if got := so.Spec.Triggers[0].Metadata["taskQueue"]; got != queues[kind] {
		t.Errorf("ScaledObject %s scales the %s workers on queue %q, want %q", so.Metadata.Name, kind, got, queues[kind])
	}
}

func findServing(deployments map[string]*appsv1.Deployment) (*appsv1.Deployment, bool) {
	for _, d := range deployments {
		if d.Spec.Template.Labels["app.kubernetes.io/component"] == "serving" {
			return d, true
		}
	}
	return nil, false
}

// checkDrain requires serving to be ready on /readyz and its grace period to cover the drain
// delay plus the 10 s the replica gives requests in flight.
func checkDrain(t *testing.T, d *appsv1.Deployment) {
	t.Helper()
	c := d.Spec.Template.Spec.Containers[0]
	if c.ReadinessProbe == nil || c.ReadinessProbe.HTTPGet == nil || c.ReadinessProbe.HTTPGet.Path != "/readyz" {
		t.Errorf("serving: readiness must be /readyz (models loaded, not draining)")
	}
	drain := 5 * time.Second
	for _, a := range c.Args {
		if v, ok := strings.CutPrefix(a, "--drain-delay="); ok {
			var err error
			if drain, err = time.ParseDuration(v); err != nil {
				t.Fatal(err)
			}
		}
	}
	grace := time.Duration(*d.Spec.Template.Spec.TerminationGracePeriodSeconds) * time.Second
	if grace < drain+10*time.Second {
		t.Errorf("serving: grace period %v shorter than the drain delay %v and 10 s for requests in flight", grace, drain)
	}
}

// promtoolAccepts runs Debian's promtool over the rule groups.
func promtoolAccepts(t *testing.T, r *prometheusRule) {
	t.Helper()
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatal("promtool not found: `make tools` installs Debian's prometheus")
	}
	raw, err := yaml.Marshal(r.Spec)
	if err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(t.TempDir(), "rules.yml")
	if err := os.WriteFile(f, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(promtool, "check", "rules", f).CombinedOutput(); err != nil {
		t.Errorf("promtool check rules on the PrometheusRule: %v\n%s", err, out)
	}
}
