{{/* Names, labels and the shared pieces of every pod. */}}

{{- define "herald.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The resource name prefix: at most 63 characters less room for "-websocket-metrics". */}}
{{- define "herald.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 45 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 45 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 45 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "herald.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Selector labels: never change them (a Deployment's selector is immutable). */}}
{{- define "herald.selectorLabels" -}}
app.kubernetes.io/name: {{ include "herald.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "herald.labels" -}}
helm.sh/chart: {{ include "herald.chart" . }}
{{ include "herald.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: herald
{{- end -}}

{{/* (dict "root" $ "component" "web") */}}
{{- define "herald.componentSelectorLabels" -}}
{{ include "herald.selectorLabels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "herald.componentLabels" -}}
{{ include "herald.labels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "herald.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) -}}
{{- end -}}
{{- end -}}

{{- define "herald.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "herald.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* The Secret the processes read: the operator's, or the chart's. */}}
{{- define "herald.secretName" -}}
{{- default (include "herald.fullname" .) .Values.existingSecret -}}
{{- end -}}

{{- define "herald.tlsSecretName" -}}
{{- default (printf "%s-tls" (include "herald.fullname" .)) .Values.ingress.tls.secretName -}}
{{- end -}}

{{/*
Variables the chart sets itself from a dedicated value; `env` maps may not set them (a second
source of the same variable would silently lose to one of them).
*/}}
{{- define "herald.reservedEnv" -}}
{{- list "PLATFORM_HOST" "PORT" "WEB_CONCURRENCY" "FORWARDED_ALLOW_IPS" "CELERY_WORKER_CONCURRENCY" "METRICS_PORT" "PROMETHEUS_MULTIPROC_DIR" "SECRET_KEY" "DATABASE_URL" "REDIS_URL" "EMAIL_URL" "SENTRY_DSN" "METRICS_TOKEN" "VAPID_PRIVATE_KEY" "HERALD_ENCRYPTION_KEYS" | toJson -}}
{{- end -}}

{{/* Refuses values that contradict each other, with a message that says what to change. */}}
{{- define "herald.validate" -}}
{{- $reserved := include "herald.reservedEnv" . | fromJsonArray -}}
{{- $maps := dict "env" .Values.env "web.env" .Values.web.env "websocket.env" .Values.websocket.env "worker.env" .Values.worker.env "beat.env" .Values.beat.env "migrations.env" .Values.migrations.env "secrets.extra" .Values.secrets.extra -}}
{{- range $where, $map := $maps -}}
{{- range $name := keys $map | sortAlpha -}}
{{- if eq $name "PORT" -}}
{{- fail (printf "%s.PORT: the port is fixed at 8000 (the image's, the probes' and the Service's)" $where) -}}
{{- else if has $name $reserved -}}
{{- fail (printf "%s.%s: %s is set by the chart from its own value (see values.yaml), not through %s" $where $name $name $where) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- if .Values.existingSecret -}}
{{- range $key, $value := .Values.secrets -}}
{{- if $value -}}
{{- fail (printf "secrets.%s is set along with existingSecret %q: put it in that Secret instead (secrets.* are only for the chart's own Secret)" $key $.Values.existingSecret) -}}
{{- end -}}
{{- end -}}
{{- else if .Values.metrics.serviceMonitor.tokenInExistingSecret -}}
{{- fail "metrics.serviceMonitor.tokenInExistingSecret is for existingSecret; with the chart's Secret set secrets.metricsToken" -}}
{{- end -}}
{{- range $component := list "web" "websocket" "worker" -}}
{{- $autoscaling := (get $.Values $component).autoscaling -}}
{{- if gt (int $autoscaling.minReplicas) (int $autoscaling.maxReplicas) -}}
{{- fail (printf "%s.autoscaling.minReplicas (%d) is above maxReplicas (%d)" $component (int $autoscaling.minReplicas) (int $autoscaling.maxReplicas)) -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/*
SECRET_KEY when none is given: the one in the live Secret (so an upgrade keeps everyone signed
in), else a new random one. Memoized in .Values for this render, so that the Secret, its copy
for the migration hook and the pods' checksum all carry the same key.
*/}}
{{- define "herald.secretKey" -}}
{{- if .Values.secrets.secretKey -}}
{{- .Values.secrets.secretKey -}}
{{- else -}}
{{- if not (hasKey .Values "__heraldGeneratedSecretKey") -}}
{{- $live := lookup "v1" "Secret" .Release.Namespace (include "herald.fullname" .) -}}
{{- $kept := dig "data" "SECRET_KEY" "" ($live | default dict) -}}
{{- $_ := set .Values "__heraldGeneratedSecretKey" (ternary ($kept | b64dec) (randAlphaNum 64) (ne $kept "")) -}}
{{- end -}}
{{- get .Values "__heraldGeneratedSecretKey" -}}
{{- end -}}
{{- end -}}

{{/* The chart's Secret's data (base64), for the Secret, its hook copy and the checksum. */}}
{{- define "herald.secretData" -}}
{{- $data := dict "SECRET_KEY" (include "herald.secretKey" .) -}}
{{- $named := dict "DATABASE_URL" .Values.secrets.databaseUrl "REDIS_URL" .Values.secrets.redisUrl "EMAIL_URL" .Values.secrets.emailUrl "SENTRY_DSN" .Values.secrets.sentryDsn "METRICS_TOKEN" .Values.secrets.metricsToken "VAPID_PRIVATE_KEY" .Values.secrets.vapidPrivateKey "HERALD_ENCRYPTION_KEYS" .Values.secrets.encryptionKeys -}}
{{- range $name, $value := merge $named .Values.secrets.extra -}}
{{- if $value -}}
{{- $_ := set $data $name $value -}}
{{- end -}}
{{- end -}}
{{- range $name := keys $data | sortAlpha }}
{{ $name }}: {{ get $data $name | b64enc | quote }}
{{- end -}}
{{- end -}}

{{/* The ConfigMap's data: PLATFORM_HOST and the global env. */}}
{{- define "herald.configData" -}}
{{- $data := merge (dict "PLATFORM_HOST" .Values.platformHost) .Values.env -}}
{{- range $name := keys $data | sortAlpha }}
{{ $name }}: {{ get $data $name | toString | quote }}
{{- end -}}
{{- end -}}

{{/* A NAME: value map as a container's env list. */}}
{{- define "herald.envList" -}}
{{- range $name := keys . | sortAlpha }}
- name: {{ $name }}
  value: {{ get $ $name | toString | quote }}
{{- end -}}
{{- end -}}

{{/*
The pod template of a process. (dict "root" $ "component" NAME "process" web|worker|beat|release
"values" COMPONENT_VALUES "configName" CONFIGMAP "secretName" SECRET "env" MAP "metrics" BOOL
"ports" LIST "probes" BOOL "preStopSleepSeconds" N "restartPolicy" POLICY "serviceAccountName"
NAME)
*/}}
{{- define "herald.podTemplate" -}}
{{- $root := .root -}}
{{- $values := .values -}}
metadata:
  labels:
    {{- include "herald.componentLabels" (dict "root" $root "component" .component) | nindent 4 }}
    {{- with $root.Values.podLabels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  annotations:
    checksum/config: {{ include "herald.configData" $root | sha256sum }}
    {{- if not $root.Values.existingSecret }}
    checksum/secret: {{ include "herald.secretData" $root | sha256sum }}
    {{- end }}
    {{- with merge (deepCopy ($values.podAnnotations | default dict)) $root.Values.podAnnotations }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
spec:
  serviceAccountName: {{ .serviceAccountName | default (include "herald.serviceAccountName" $root) }}
  automountServiceAccountToken: {{ $root.Values.serviceAccount.automountServiceAccountToken }}
  # Kubernetes would add a variable per Service of the namespace; Herald reads none of them.
  enableServiceLinks: false
  {{- with $root.Values.imagePullSecrets }}
  imagePullSecrets:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $root.Values.priorityClassName }}
  priorityClassName: {{ . }}
  {{- end }}
  {{- with .restartPolicy }}
  restartPolicy: {{ . }}
  {{- end }}
  terminationGracePeriodSeconds: {{ $values.terminationGracePeriodSeconds | default 30 }}
  securityContext:
    {{- toYaml $root.Values.podSecurityContext | nindent 4 }}
  {{- with $values.nodeSelector | default $root.Values.nodeSelector }}
  nodeSelector:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $values.tolerations | default $root.Values.tolerations }}
  tolerations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $values.affinity | default $root.Values.affinity }}
  affinity:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- if and $root.Values.topologySpreadConstraints (ne .process "release") }}
  topologySpreadConstraints:
    {{- range $root.Values.topologySpreadConstraints }}
    - {{- toYaml (merge (deepCopy .) (dict "labelSelector" (dict "matchLabels" (include "herald.componentSelectorLabels" (dict "root" $root "component" $.component) | fromYaml)))) | nindent 6 }}
    {{- end }}
  {{- end }}
  containers:
    - name: {{ .process }}
      image: {{ include "herald.image" $root }}
      imagePullPolicy: {{ $root.Values.image.pullPolicy }}
      # The image's entry point, bin/herald-process, runs this Procfile line.
      args: [{{ .process | quote }}]
      securityContext:
        {{- toYaml $root.Values.securityContext | nindent 8 }}
      envFrom:
        - configMapRef:
            name: {{ .configName }}
        - secretRef:
            name: {{ .secretName }}
        {{- with $root.Values.extraEnvFrom }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      {{- $env := merge (deepCopy ($values.env | default dict)) (.env | default dict) }}
      {{- if .metrics }}
      {{- $_ := set $env "PROMETHEUS_MULTIPROC_DIR" $root.Values.metrics.multiprocDir }}
      {{- end }}
      {{- with $env }}
      env:
        {{- include "herald.envList" . | trim | nindent 8 }}
      {{- end }}
      {{- with .ports }}
      ports:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- if .probes }}
      startupProbe:
        httpGet:
          path: /healthz
          port: http
        {{- toYaml $values.startupProbe | nindent 8 }}
      livenessProbe:
        httpGet:
          path: /healthz
          port: http
        {{- toYaml $values.livenessProbe | nindent 8 }}
      readinessProbe:
        httpGet:
          path: /readyz
          port: http
        {{- toYaml $values.readinessProbe | nindent 8 }}
      {{- end }}
      {{- if .preStopSleepSeconds }}
      lifecycle:
        preStop:
          exec:
            command: ["sleep", {{ .preStopSleepSeconds | toString | quote }}]
      {{- end }}
      resources:
        {{- toYaml $values.resources | nindent 8 }}
      volumeMounts:
        - name: tmp
          mountPath: /tmp
        {{- if .metrics }}
        - name: metrics
          mountPath: {{ $root.Values.metrics.multiprocDir }}
        {{- end }}
        {{- with $root.Values.extraVolumeMounts }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
  volumes:
    - name: tmp
      emptyDir:
        sizeLimit: {{ $root.Values.tmpSizeLimit }}
    {{- if .metrics }}
    # Empty when the pod starts, as prometheus-client's multiprocess mode needs.
    - name: metrics
      emptyDir:
        sizeLimit: 64Mi
    {{- end }}
    {{- with $root.Values.extraVolumes }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
{{- end -}}

{{/* A Deployment. (dict "root" $ "component" NAME "values" V "pod" POD_TEMPLATE_ARGS "strategy" S) */}}
{{- define "herald.deployment" -}}
{{- $root := .root -}}
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ include "herald.fullname" $root }}-{{ .component }}
  namespace: {{ $root.Release.Namespace }}
  labels:
    {{- include "herald.componentLabels" (dict "root" $root "component" .component) | nindent 4 }}
spec:
  {{- if not (and .values.autoscaling .values.autoscaling.enabled) }}
  replicas: {{ .replicas }}
  {{- end }}
  revisionHistoryLimit: 5
  selector:
    matchLabels:
      {{- include "herald.componentSelectorLabels" (dict "root" $root "component" .component) | nindent 6 }}
  strategy:
    {{- toYaml .strategy | nindent 4 }}
  template:
    {{- include "herald.podTemplate" .pod | nindent 4 }}
{{- end -}}
