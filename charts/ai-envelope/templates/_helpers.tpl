{{/* The release's full name: the release name when it already holds the chart's name. */}}
{{- define "ai-envelope.fullname" -}}
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

{{- define "ai-envelope.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "ai-envelope.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "ai-envelope.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "ai-envelope.selectorLabels" -}}
app.kubernetes.io/name: {{ include "ai-envelope.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end -}}

{{- define "ai-envelope.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "ai-envelope.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "ai-envelope.webhookService" -}}
{{- printf "%s-webhook" (include "ai-envelope.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "ai-envelope.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{- define "ai-envelope.sidecarImage" -}}
{{- printf "%s:%s" (default .Values.image.repository .Values.injection.image.repository) (default (default .Chart.AppVersion .Values.image.tag) .Values.injection.image.tag) -}}
{{- end -}}

{{/* Names the operator's RBAC (operator/rbac.ts, operator/webhook/rbac.ts) refers to by name. */}}
{{- define "ai-envelope.webhookConfigName" -}}ai-envelope-injector{{- end -}}
{{- define "ai-envelope.tlsSecretName" -}}ai-envelope-webhook-tls{{- end -}}
{{- define "ai-envelope.roleName" -}}ai-envelope-operator{{- end -}}
{{- define "ai-envelope.certManagerSecret" -}}{{ include "ai-envelope.fullname" . }}-webhook-cert{{- end -}}
