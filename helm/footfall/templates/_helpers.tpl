{{/*
Names, labels, images, security contexts, probes and the shared environment.
The bitnami charts take these from their `common` library chart; this chart has no
dependencies (CI renders it offline), so the few helpers it needs live here.
*/}}

{{- define "footfall.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "footfall.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* A component's object name: (dict "context" $ "component" "gateway") */}}
{{- define "footfall.component.fullname" -}}
{{- printf "%s-%s" (include "footfall.fullname" .context) .component | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "footfall.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels of every object: (dict "context" $ "component" "gateway") */}}
{{- define "footfall.labels" -}}
app.kubernetes.io/name: {{ include "footfall.name" .context }}
app.kubernetes.io/instance: {{ .context.Release.Name }}
app.kubernetes.io/version: {{ .context.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .context.Release.Service }}
app.kubernetes.io/part-of: footfall
helm.sh/chart: {{ include "footfall.chart" .context }}
{{- if .component }}
app.kubernetes.io/component: {{ .component }}
{{- end }}
{{- with .context.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Selector labels (immutable once deployed): (dict "context" $ "component" "gateway") */}}
{{- define "footfall.selectorLabels" -}}
app.kubernetes.io/name: {{ include "footfall.name" .context }}
app.kubernetes.io/instance: {{ .context.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* An image reference: (dict "image" .Values.gateway.image "global" .Values.global) */}}
{{- define "footfall.image" -}}
{{- $registry := .image.registry -}}
{{- if and .global .global.imageRegistry -}}
{{- $registry = .global.imageRegistry -}}
{{- end -}}
{{- $repository := .image.repository -}}
{{- if $registry -}}
{{- $repository = printf "%s/%s" $registry .image.repository -}}
{{- end -}}
{{- if .image.digest -}}
{{- printf "%s@%s" $repository .image.digest -}}
{{- else -}}
{{- printf "%s:%s" $repository (toString .image.tag) -}}
{{- end -}}
{{- end -}}

{{/* imagePullSecrets: (dict "image" .Values.gateway.image "global" .Values.global) */}}
{{- define "footfall.imagePullSecrets" -}}
{{- $secrets := concat (default list .global.imagePullSecrets) (default list .image.pullSecrets) | uniq -}}
{{- if $secrets -}}
imagePullSecrets:
{{- range $secrets }}
  - name: {{ . }}
{{- end }}
{{- end }}
{{- end -}}

{{/* A security context without the chart's own `enabled` switch. */}}
{{- define "footfall.securityContext" -}}
{{- omit . "enabled" | toYaml -}}
{{- end -}}

{{/* An HTTP probe: (dict "probe" .Values.gateway.livenessProbe "path" "/healthz" "port" "http") */}}
{{- define "footfall.httpProbe" -}}
httpGet:
  path: {{ .path }}
  port: {{ .port }}
{{ omit .probe "enabled" | toYaml }}
{{- end -}}

{{/* Default pod anti-affinity: prefer spreading a component over nodes. */}}
{{- define "footfall.affinity" -}}
{{- if .affinity -}}
{{- toYaml .affinity -}}
{{- else -}}
podAntiAffinity:
  preferredDuringSchedulingIgnoredDuringExecution:
    - weight: 100
      podAffinityTerm:
        topologyKey: kubernetes.io/hostname
        labelSelector:
          matchLabels:
            {{- include "footfall.selectorLabels" (dict "context" .context "component" .component) | nindent 12 }}
{{- end -}}
{{- end -}}

{{- define "footfall.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "footfall.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "footfall.secretName" -}}
{{- printf "%s-secrets" (include "footfall.fullname" .) -}}
{{- end -}}

{{- define "footfall.configName" -}}
{{- printf "%s-config" (include "footfall.fullname" .) -}}
{{- end -}}

{{/* Pod annotations asking a Prometheus to scrape /metrics: (dict "context" $ "port" 8000) */}}
{{- define "footfall.scrapeAnnotations" -}}
{{- if .context.Values.observability.metrics.podAnnotations -}}
prometheus.io/scrape: "true"
prometheus.io/port: {{ .port | quote }}
prometheus.io/path: /metrics
{{- end }}
{{- end -}}

{{/*
The environment every Footfall container shares: the ConfigMap (FOOTFALL_* settings), the
secrets, and what the downward API gives (DogStatsD on the node).
*/}}
{{- define "footfall.envFrom" -}}
- configMapRef:
    name: {{ include "footfall.configName" . }}
{{- end -}}

{{- define "footfall.env" -}}
- name: FOOTFALL_VISITOR_SECRET
  valueFrom:
    secretKeyRef:
      name: {{ default (include "footfall.secretName" .) .Values.config.existingSecret }}
      key: visitor-secret
- name: FOOTFALL_INFLUX_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ default (include "footfall.secretName" .) .Values.externalInfluxdb.existingSecret }}
      key: {{ ternary .Values.externalInfluxdb.existingSecretPasswordKey "influx-password" (not (empty .Values.externalInfluxdb.existingSecret)) }}
{{- if and .Values.observability.dogstatsd.enabled .Values.observability.dogstatsd.useHostIP }}
- name: FOOTFALL_DOGSTATSD_HOST
  valueFrom:
    fieldRef:
      fieldPath: status.hostIP
{{- end }}
{{- end -}}

{{/* Checks that no template can express by itself; called from the ConfigMap. */}}
{{- define "footfall.validateValues" -}}
{{- $partitions := int .Values.config.topicPartitions -}}
{{- if lt $partitions 1 -}}
{{- fail (printf "config.topicPartitions must be at least 1 (got %d)" $partitions) -}}
{{- end -}}
{{- if gt (int .Values.worker.replicaCount) $partitions -}}
{{- fail (printf "worker.replicaCount (%d) exceeds config.topicPartitions (%d): a Kafka partition is owned by one worker, so workers beyond the partition count would own nothing and only cause rebalances. Lower worker.replicaCount, or add partitions to %s and its changelog topics first (docs/operations.md, \"Scaling workers\")." (int .Values.worker.replicaCount) $partitions .Values.config.eventsTopic) -}}
{{- end -}}
{{- if and .Values.haproxy.enabled .Values.gateway.autoscaling.enabled (gt (int .Values.gateway.autoscaling.maxReplicas) (int .Values.haproxy.config.maxGateways)) -}}
{{- fail (printf "gateway.autoscaling.maxReplicas (%d) exceeds haproxy.config.maxGateways (%d): HAProxy would not send traffic to the extra gateways." (int .Values.gateway.autoscaling.maxReplicas) (int .Values.haproxy.config.maxGateways)) -}}
{{- end -}}
{{- if and .Values.haproxy.enabled (not .Values.gateway.autoscaling.enabled) (gt (int .Values.gateway.replicaCount) (int .Values.haproxy.config.maxGateways)) -}}
{{- fail (printf "gateway.replicaCount (%d) exceeds haproxy.config.maxGateways (%d)." (int .Values.gateway.replicaCount) (int .Values.haproxy.config.maxGateways)) -}}
{{- end -}}
{{- if and .Values.gateway.autoscaling.enabled (lt (int .Values.gateway.autoscaling.maxReplicas) (int .Values.gateway.autoscaling.minReplicas)) -}}
{{- fail "gateway.autoscaling.maxReplicas must be at least gateway.autoscaling.minReplicas" -}}
{{- end -}}
{{- end -}}
