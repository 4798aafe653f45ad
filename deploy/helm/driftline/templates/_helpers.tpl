{{/* The release's full name, at most 63 characters. */}}
{{- define "driftline.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* A component's name: <fullname>-<component>. */}}
{{- define "driftline.name" -}}
{{- printf "%s-%s" (include "driftline.fullname" .root) .component | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "driftline.selectorLabels" -}}
app.kubernetes.io/name: driftline
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "driftline.labels" -}}
{{ include "driftline.selectorLabels" . }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version }}
{{- end -}}

{{- define "driftline.image" -}}
{{- $img := .Values.image -}}
{{- if $img.digest -}}
{{ $img.repository }}@{{ $img.digest }}
{{- else -}}
{{ $img.repository }}:{{ $img.tag | default .Chart.AppVersion }}
{{- end -}}
{{- end -}}

{{- define "driftline.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{ .Values.serviceAccount.name | default (include "driftline.fullname" .) }}
{{- else -}}
{{ .Values.serviceAccount.name | default "default" }}
{{- end -}}
{{- end -}}

{{- define "driftline.rbacConfigMap" -}}
{{- .Values.rbac.existingConfigMap | default (printf "%s-rbac" (include "driftline.fullname" .)) -}}
{{- end -}}

{{/* Values every component needs, refused with a message when missing. */}}
{{- define "driftline.required" -}}
{{- $_ := required "temporal.address is required: the Temporal frontend's host:port" .Values.temporal.address -}}
{{- $_ := required "s3.bucket is required: the bucket Driftline keeps datasets, models and the audit log in" .Values.s3.bucket -}}
{{- if and .Values.temporal.tls.enabled (not .Values.temporal.tls.secretName) -}}
{{- fail "temporal.tls.enabled needs temporal.tls.secretName: a Secret with tls.crt and tls.key" -}}
{{- end -}}
{{- if and (not .Values.rbac.policy) (not .Values.rbac.existingConfigMap) -}}
{{- fail "rbac.policy or rbac.existingConfigMap is required: who may do what on which model (examples/rbac.yaml)" -}}
{{- end -}}
{{- end -}}

{{/* The environment every Driftline process reads: Temporal, S3, shared secrets as files. */}}
{{- define "driftline.env" -}}
- name: TEMPORAL_ADDRESS
  value: {{ .Values.temporal.address | quote }}
- name: TEMPORAL_NAMESPACE
  value: {{ .Values.temporal.namespace | quote }}
{{- if .Values.temporal.tls.enabled }}
- name: TEMPORAL_TLS
  value: "true"
- name: TEMPORAL_TLS_CLIENT_CERT_PATH
  value: /run/driftline/temporal-tls/tls.crt
- name: TEMPORAL_TLS_CLIENT_KEY_PATH
  value: /run/driftline/temporal-tls/tls.key
{{- if .Values.temporal.tls.serverName }}
- name: TEMPORAL_TLS_SERVER_NAME
  value: {{ .Values.temporal.tls.serverName | quote }}
{{- end }}
{{- end }}
{{- if .Values.temporal.apiKey.secretName }}
- name: TEMPORAL_API_KEY
  valueFrom:
    secretKeyRef:
      name: {{ .Values.temporal.apiKey.secretName }}
      key: {{ .Values.temporal.apiKey.key }}
{{- end }}
- name: DRIFTLINE_S3_ENDPOINT
  value: {{ .Values.s3.endpoint | quote }}
- name: DRIFTLINE_S3_BUCKET
  value: {{ .Values.s3.bucket | quote }}
- name: DRIFTLINE_S3_REGION
  value: {{ .Values.s3.region | quote }}
- name: DRIFTLINE_S3_PREFIX
  value: {{ .Values.s3.prefix | quote }}
{{- if .Values.s3.credentials.secretName }}
- name: DRIFTLINE_S3_ACCESS_KEY_FILE
  value: /run/driftline/s3/{{ .Values.s3.credentials.accessKeyKey }}
- name: DRIFTLINE_S3_SECRET_KEY_FILE
  value: /run/driftline/s3/{{ .Values.s3.credentials.secretKeyKey }}
{{- end }}
{{- if .Values.secrets.payloadKey.secretName }}
- name: DRIFTLINE_PAYLOAD_KEY_FILE
  value: /run/driftline/payload/{{ .Values.secrets.payloadKey.key }}
{{- end }}
{{- if .Values.otlpEndpoint }}
- name: OTEL_EXPORTER_OTLP_ENDPOINT
  value: {{ .Values.otlpEndpoint | quote }}
{{- end }}
- name: DRIFTLINE_RBAC
  value: /etc/driftline/rbac/rbac.yaml
{{- end -}}

{{/* Volumes behind driftline.env and the scratch /tmp. */}}
{{- define "driftline.volumes" -}}
- name: tmp
  emptyDir:
    sizeLimit: {{ .Values.tmpSize }}
- name: rbac
  configMap:
    name: {{ include "driftline.rbacConfigMap" . }}
{{- if .Values.s3.credentials.secretName }}
- name: s3
  secret:
    secretName: {{ .Values.s3.credentials.secretName }}
    defaultMode: 0440
{{- end }}
{{- if .Values.temporal.tls.enabled }}
- name: temporal-tls
  secret:
    secretName: {{ .Values.temporal.tls.secretName }}
    defaultMode: 0440
{{- end }}
{{- if .Values.secrets.payloadKey.secretName }}
- name: payload
  secret:
    secretName: {{ .Values.secrets.payloadKey.secretName }}
    defaultMode: 0440
{{- end }}
{{- end -}}

{{- define "driftline.volumeMounts" -}}
- name: tmp
  mountPath: /tmp
- name: rbac
  mountPath: /etc/driftline/rbac
  readOnly: true
{{- if .Values.s3.credentials.secretName }}
- name: s3
  mountPath: /run/driftline/s3
  readOnly: true
{{- end }}
{{- if .Values.temporal.tls.enabled }}
- name: temporal-tls
  mountPath: /run/driftline/temporal-tls
  readOnly: true
{{- end }}
{{- if .Values.secrets.payloadKey.secretName }}
- name: payload
  mountPath: /run/driftline/payload
  readOnly: true
{{- end }}
{{- end -}}

{{/* The label key, mounted where serving and the workers read it. */}}
{{- define "driftline.labelKeyVolume" -}}
{{- if .Values.secrets.labelKey.secretName }}
- name: label-key
  secret:
    secretName: {{ .Values.secrets.labelKey.secretName }}
    defaultMode: 0440
{{- end }}
{{- end -}}

{{- define "driftline.labelKeyMount" -}}
{{- if .Values.secrets.labelKey.secretName }}
- name: label-key
  mountPath: /run/driftline/label
  readOnly: true
{{- end }}
{{- end -}}

{{- define "driftline.labelKeyEnv" -}}
{{- if .Values.secrets.labelKey.secretName }}
- name: DRIFTLINE_LABEL_KEY_FILE
  value: /run/driftline/label/{{ .Values.secrets.labelKey.key }}
{{- end }}
{{- end -}}

{{/* The OIDC settings of the API and the console. */}}
{{- define "driftline.oidcEnv" -}}
- name: DRIFTLINE_OIDC_ISSUER
  value: {{ required "oidc.issuer is required with the API or the console: tokens are checked against your identity provider" .Values.oidc.issuer | quote }}
- name: DRIFTLINE_OIDC_AUDIENCE
  value: {{ required "oidc.audience is required with the API or the console" .Values.oidc.audience | quote }}
- name: DRIFTLINE_OIDC_JWKS_URL
  value: {{ required "oidc.jwksUrl is required with the API or the console" .Values.oidc.jwksUrl | quote }}
{{- end -}}

{{/* Pod-level settings shared by every component: .root, .c (the component's values). */}}
{{- define "driftline.podSpec" -}}
serviceAccountName: {{ include "driftline.serviceAccountName" .root }}
automountServiceAccountToken: false
securityContext:
  {{- toYaml .root.Values.podSecurityContext | nindent 2 }}
{{- with .root.Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with (.c.nodeSelector | default .root.Values.nodeSelector) }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with (.c.tolerations | default .root.Values.tolerations) }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with (.c.affinity | default .root.Values.affinity) }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{- define "driftline.pdb" -}}
{{- if .c.pdb.enabled }}
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: {{ include "driftline.name" . }}
  labels:
    {{- include "driftline.labels" . | nindent 4 }}
spec:
  minAvailable: {{ .c.pdb.minAvailable }}
  selector:
    matchLabels:
      {{- include "driftline.selectorLabels" . | nindent 6 }}
{{- end }}
{{- end -}}
