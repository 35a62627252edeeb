{{/*
The chart name, or nameOverride.
*/}}
{{- define "ipvsctl.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The name of every object: fullnameOverride, or the release name with the chart
name appended unless it already contains it. 63 characters at most (DNS label).
*/}}
{{- define "ipvsctl.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/*
Chart name and version, for the helm.sh/chart label.
*/}}
{{- define "ipvsctl.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Labels on every object.
*/}}
{{- define "ipvsctl.labels" -}}
helm.sh/chart: {{ include "ipvsctl.chart" . }}
{{ include "ipvsctl.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: node-agent
app.kubernetes.io/part-of: ipvsctl
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/*
Labels that select the agent's pods; never change them in an upgrade (a
DaemonSet's selector is immutable).
*/}}
{{- define "ipvsctl.selectorLabels" -}}
app.kubernetes.io/name: {{ include "ipvsctl.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "ipvsctl.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "ipvsctl.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
repository:tag, or repository@digest when a digest is given.
*/}}
{{- define "ipvsctl.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/*
host:port for a listen flag, with an IPv6 host in brackets. Takes a dict with
"host" and "port".
*/}}
{{- define "ipvsctl.hostPort" -}}
{{- if contains ":" .host }}
{{- printf "[%s]:%d" .host (int .port) }}
{{- else }}
{{- printf "%s:%d" .host (int .port) }}
{{- end }}
{{- end }}

{{/*
Where to reach a listen address, for NOTES.txt. Takes "host", "port", "path".
*/}}
{{- define "ipvsctl.notesURL" -}}
{{- if include "ipvsctl.isWildcard" .host -}}
http://NODE_ADDRESS:{{ .port }}{{ .path }}
{{- else -}}
http://{{ include "ipvsctl.hostPort" . }}{{ .path }} (from the node itself)
{{- end }}
{{- end }}

{{/*
Whether a bind address means "every address of the node".
*/}}
{{- define "ipvsctl.isWildcard" -}}
{{- if or (eq . "0.0.0.0") (eq . "::") }}true{{ end }}
{{- end }}

{{/*
The init container's script: make sure ip_vs is loaded (its sysctls exist only
then), then write each sysctl, one log line each. Numbers are printed with %d:
Helm reads YAML numbers as floats, which would print 1048576 as 1.048576e+06.
*/}}
{{- define "ipvsctl.sysctlScript" -}}
{{- $sysctls := dict
  "net.ipv4.ip_forward" 1
  "net.ipv4.vs.conntrack" 1
  "net.ipv4.vs.expire_nodest_conn" 1
  "net.ipv4.vs.expire_quiescent_template" 1
}}
{{- if .Values.strictArp }}
{{- $_ := set $sysctls "net.ipv4.conf.all.arp_ignore" 1 }}
{{- $_ = set $sysctls "net.ipv4.conf.all.arp_announce" 2 }}
{{- end }}
{{- range $name, $value := .Values.sysctls.extra }}
{{- $_ := set $sysctls $name $value }}
{{- end -}}
set -eu
{{- if .Values.loadKernelModules }}
modprobe -a ip_vs {{ printf "ip_vs_%s" .Values.scheduler }} nf_conntrack
{{- else }}
# Linux 5.16+ loads ip_vs on the first IPVS netlink request; ipvsadm makes one.
ipvsadm -Ln >/dev/null 2>&1 || true
{{- end }}
if [ ! -d /proc/sys/net/ipv4/vs ]; then
  echo 'level=error msg="ip_vs kernel module is not loaded" hint="set loadKernelModules=true, or load ip_vs on the node"' >&2
  exit 1
fi
{{- range $name, $value := $sysctls }}
{{- $path := ternary $name (replace "." "/" $name) (contains "/" $name) }}
{{- $text := toString $value }}
{{- if or (kindIs "float64" $value) (kindIs "int" $value) (kindIs "int64" $value) }}
{{- $text = printf "%d" (int64 $value) }}
{{- end }}
printf '%s\n' {{ $text | squote }} > {{ printf "/proc/sys/%s" $path | squote }}
echo {{ printf "level=info msg=\"sysctl set\" name=%s value=%q" $name $text | squote }}
{{- end }}
{{- end }}
