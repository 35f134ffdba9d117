{{/* The chart's name, truncated to fit a DNS label. */}}
{{- define "flotilla.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Full name of the release's objects: the release name, suffixed with the chart name unless it holds it. */}}
{{- define "flotilla.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else if contains (include "flotilla.name" .) .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name (include "flotilla.name" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* Name of the embedded registry's objects. */}}
{{- define "flotilla.registryName" -}}
{{- printf "%s-registry" (include "flotilla.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels every object carries. */}}
{{- define "flotilla.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/name: {{ include "flotilla.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: flotilla
{{- end -}}

{{/* Selector of the controller's pods. */}}
{{- define "flotilla.selectorLabels" -}}
app.kubernetes.io/name: {{ include "flotilla.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: controller
{{- end -}}

{{/* The controller component of the current shard: "controller", or "controller-shard-<id>" (values.shardId, set per shard by shards.yaml). */}}
{{- define "flotilla.controllerComponent" -}}
controller{{ with .Values.shardId }}-shard-{{ . }}{{ end }}
{{- end -}}

{{/* Selector of the current shard's controller pods (the default shard's is flotilla.selectorLabels). */}}
{{- define "flotilla.shardSelectorLabels" -}}
app.kubernetes.io/name: {{ include "flotilla.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: {{ include "flotilla.controllerComponent" . }}
{{- end -}}

{{/* Selector of the embedded registry's pod. */}}
{{- define "flotilla.registrySelectorLabels" -}}
app.kubernetes.io/name: {{ include "flotilla.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: registry
{{- end -}}

{{/* The controller's ServiceAccount name. */}}
{{- define "flotilla.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "flotilla.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* The image reference. */}}
{{- define "flotilla.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{/* Name of the Secret holding the registry's htpasswd file. */}}
{{- define "flotilla.registryAuthSecret" -}}
{{- default (printf "%s-auth" (include "flotilla.registryName" .)) .Values.registry.auth.existingSecret -}}
{{- end -}}

{{/* Fails early on combinations that cannot work, with the value to change. */}}
{{- define "flotilla.validate" -}}
{{- if and (gt (int .Values.replicas) 1) (not .Values.leaderElection.enabled) -}}
{{- fail "replicas > 1 needs leaderElection.enabled=true: two controllers reconciling at once would fight over every object" -}}
{{- end -}}
{{- if eq .Values.workspaceNamespace .Values.registrationNamespace -}}
{{- fail "workspaceNamespace and registrationNamespace must differ: import tokens may read every Secret of the registration namespace by name" -}}
{{- end -}}
{{- if and .Values.registry.enabled .Values.registry.auth.enabled (not .Values.registry.auth.htpasswd) (not .Values.registry.auth.existingSecret) -}}
{{- fail "registry.enabled with registry.auth.enabled needs registry.auth.htpasswd (bcrypt lines from `htpasswd -Bbn user password`) or registry.auth.existingSecret; set registry.auth.enabled=false only for a registry anyone in reach may write" -}}
{{- end -}}
{{- end -}}

{{/* A RoleBinding of Role `name` in `namespace` to the controller's ServiceAccount. Takes dict root, name, namespace. */}}
{{- define "flotilla.roleBinding" -}}
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: {{ .name }}
  namespace: {{ .namespace }}
  labels:
    {{- include "flotilla.labels" .root | nindent 4 }}
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: Role
  name: {{ .name }}
subjects:
  - kind: ServiceAccount
    name: {{ include "flotilla.serviceAccountName" .root }}
    namespace: {{ .root.Release.Namespace }}
{{- end -}}
