{{/* Names, labels and the derived settings every template shares. */}}

{{/* The chart name, for the app.kubernetes.io/name label. */}}
{{- define "k8s-gateway.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The full name of every object; 63 characters at most (DNS label). */}}
{{- define "k8s-gateway.fullname" -}}
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

{{/* Labels that select our pods; never change them (Deployment selectors are immutable). */}}
{{- define "k8s-gateway.selectorLabels" -}}
app.kubernetes.io/name: {{ include "k8s-gateway.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* Labels of every object. */}}
{{- define "k8s-gateway.labels" -}}
{{ include "k8s-gateway.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- with .Values.customLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Selector of the DNS Service alone (the metrics Service has component=metrics). */}}
{{- define "k8s-gateway.dnsServiceSelector" -}}
matchLabels:
  {{- include "k8s-gateway.selectorLabels" . | nindent 2 }}
  app.kubernetes.io/component: dns
{{- end -}}

{{- define "k8s-gateway.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "k8s-gateway.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "k8s-gateway.image" -}}
{{- $repo := .Values.image.repository -}}
{{- if .Values.image.registry -}}
{{- $repo = printf "%s/%s" (trimSuffix "/" .Values.image.registry) $repo -}}
{{- end -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" $repo .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" $repo (default .Chart.AppVersion .Values.image.tag | toString) -}}
{{- end -}}
{{- end -}}

{{/*
The domains as a JSON list. `domain` may be a list or a string of domains separated by
spaces or commas (k8s_gateway's chart put the string in the Corefile, where spaces
separate zones). Fails when there is none: we cannot guess your domain.
*/}}
{{- define "k8s-gateway.domains" -}}
{{- $domains := list -}}
{{- $raw := .Values.domain -}}
{{- if kindIs "string" $raw -}}
{{- $raw = regexSplit "[\\s,]+" (trim $raw) -1 -}}
{{- end -}}
{{- range $raw -}}
{{- $d := trim (toString .) -}}
{{- if $d -}}
{{- $domains = append $domains $d -}}
{{- end -}}
{{- end -}}
{{- if not $domains -}}
{{- fail "k8s-gateway: set `domain` to the domain(s) to answer for, e.g. --set domain=home.example" -}}
{{- end -}}
{{- toJson $domains -}}
{{- end -}}

{{/* The kinds watched, in precedence order, as a JSON list; empty watchedResources = all. */}}
{{- define "k8s-gateway.kinds" -}}
{{- $all := list "DNSEndpoint" "HTTPRoute" "GRPCRoute" "TLSRoute" "VirtualService" "Ingress" "Service" -}}
{{- toJson (.Values.watchedResources | default $all) -}}
{{- end -}}

{{/* NS name relative to each domain; by default our own Service's "<name>.<namespace>". */}}
{{- define "k8s-gateway.apex" -}}
{{- default (printf "%s.%s" (include "k8s-gateway.fullname" .) .Release.Namespace) .Values.apex -}}
{{- end -}}

{{/* Every setting the binary reads, as K8S_GATEWAY_* variables (lists comma-separated). */}}
{{- /* reverseZones, plus the IPv4 blocks of the Cilium pool we create when asked to,
each widened to whole octets (192.168.10.32/27 -> 192.168.10.0/24; a start/stop range: the
/24 of each end): a JSON list. */ -}}
{{- define "k8s-gateway.reverseZones" -}}
{{- $zones := list -}}
{{- range .Values.reverseZones -}}
{{- $zones = append $zones . -}}
{{- end -}}
{{- $pool := .Values.cilium.ipPool -}}
{{- if and $pool.enabled $pool.reverseZones -}}
{{- range $pool.blocks -}}
{{- range $address := list (.cidr | default "") (.start | default "") (.stop | default "") -}}
{{- if $address -}}
{{- $parts := splitList "/" $address -}}
{{- $ip := first $parts -}}
{{- if contains ":" $ip -}}
{{- fail (printf "k8s-gateway: cilium.ipPool.reverseZones derives IPv4 ranges only; list %s's reverse zone in reverseZones" $address) -}}
{{- end -}}
{{- /* A start or stop address: its /24. */ -}}
{{- $prefix := 24 -}}
{{- if gt (len $parts) 1 -}}
{{- $prefix = atoi (last $parts) -}}
{{- end -}}
{{- $keep := max 1 (div $prefix 8) | int -}}
{{- $octets := splitList "." $ip -}}
{{- $network := list -}}
{{- range $i, $octet := $octets -}}
{{- if lt $i $keep -}}
{{- $network = append $network $octet -}}
{{- else -}}
{{- $network = append $network "0" -}}
{{- end -}}
{{- end -}}
{{- $zones = append $zones (printf "%s/%d" (join "." $network) (mul $keep 8)) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- toJson (uniq $zones) -}}
{{- end -}}

{{- define "k8s-gateway.config" -}}
K8S_GATEWAY_DOMAIN: {{ include "k8s-gateway.domains" . | fromJsonArray | join "," | quote }}
K8S_GATEWAY_TTL: {{ .Values.ttl | toString | quote }}
K8S_GATEWAY_APEX: {{ include "k8s-gateway.apex" . | quote }}
{{- with .Values.secondary }}
K8S_GATEWAY_SECONDARY: {{ . | quote }}
{{- end }}
{{- with .Values.watchedResources }}
K8S_GATEWAY_RESOURCES: {{ join "," . | quote }}
{{- end }}
{{- with .Values.filters.ingressClasses }}
K8S_GATEWAY_INGRESS_CLASS: {{ join "," . | quote }}
{{- end }}
{{- with .Values.filters.gatewayClasses }}
K8S_GATEWAY_GATEWAY_CLASS: {{ join "," . | quote }}
{{- end }}
{{- with .Values.watchNamespaces }}
K8S_GATEWAY_NAMESPACE: {{ join "," . | quote }}
{{- end }}
{{- with .Values.labelSelector }}
K8S_GATEWAY_LABEL_SELECTOR: {{ . | quote }}
{{- end }}
{{- with include "k8s-gateway.reverseZones" . | fromJsonArray }}
K8S_GATEWAY_REVERSE_ZONE: {{ join "," . | quote }}
{{- end }}
{{- with .Values.transferAllow }}
K8S_GATEWAY_TRANSFER_ALLOW: {{ join "," . | quote }}
{{- end }}
{{- with .Values.notify }}
K8S_GATEWAY_NOTIFY: {{ join "," . | quote }}
{{- end }}
{{- if .Values.transfer.tsigSecret }}
K8S_GATEWAY_TSIG_KEY: {{ include "k8s-gateway.tsigKeyPath" . | quote }}
{{- end }}
{{- with .Values.zoneFiles }}
K8S_GATEWAY_ZONE_FILE: {{ include "k8s-gateway.zoneFilePaths" $ | quote }}
{{- end }}
{{- if .Values.staticRecords }}
K8S_GATEWAY_MANIFESTS: {{ include "k8s-gateway.staticDir" . | quote }}
{{- end }}
{{- if or .Values.zoneFiles .Values.staticRecords }}
{{- /* Files beside the cluster: without it, the files would be the only source. */}}
K8S_GATEWAY_WATCH_CLUSTER: "true"
{{- end }}
{{- with .Values.resync }}
K8S_GATEWAY_RESYNC: {{ . | quote }}
{{- end }}
{{- with .Values.syncTimeout }}
K8S_GATEWAY_SYNC_TIMEOUT: {{ . | quote }}
{{- end }}
{{- with .Values.clusters }}
K8S_GATEWAY_CLUSTER: {{ include "k8s-gateway.clusters" $ | quote }}
{{- end }}
{{- if .Values.events }}
K8S_GATEWAY_EVENTS: "true"
{{- end }}
{{- with .Values.fallthrough }}
K8S_GATEWAY_FALLTHROUGH: {{ join "," . | quote }}
K8S_GATEWAY_FALLTHROUGH_CACHE: {{ $.Values.fallthroughCache | int | toString | quote }}
{{- end }}
{{- with .Values.udpWorkers }}
K8S_GATEWAY_UDP_WORKERS: {{ . | toString | quote }}
{{- end }}
{{- $addr := .Values.listenAddress }}
{{- if contains ":" $addr }}
{{- $addr = printf "[%s]" $addr }}
{{- end }}
K8S_GATEWAY_LISTEN: {{ printf "%s:%d" $addr (int .Values.containerPorts.dns) | quote }}
K8S_GATEWAY_HTTP_LISTEN: {{ printf "%s:%d" $addr (int .Values.containerPorts.http) | quote }}
{{- /* The debug views show the whole zone: loopback only, reached with kubectl port-forward. */}}
K8S_GATEWAY_DEBUG_LISTEN: {{ ternary (printf "127.0.0.1:%d" (int .Values.debug.port)) "off" .Values.debug.enabled | quote }}
K8S_GATEWAY_LOG_FORMAT: {{ .Values.logFormat | quote }}
RUST_LOG: {{ .Values.logLevel | quote }}
{{- range $name, $value := .Values.extraConfig }}
{{ $name }}: {{ $value | toString | quote }}
{{- end }}
{{- end -}}

{{/* Where the key file of transfer.tsigSecret is mounted. */}}
{{- define "k8s-gateway.tsigKeyPath" -}}
/etc/k8s-gateway/tsig/tsig.key
{{- end -}}

{{/* Where zoneFiles and staticRecords are mounted. */}}
{{- define "k8s-gateway.zonesDir" -}}/etc/k8s-gateway/zones{{- end }}
{{- define "k8s-gateway.staticDir" -}}/etc/k8s-gateway/static{{- end }}
{{- define "k8s-gateway.clustersDir" -}}/etc/k8s-gateway/clusters{{- end }}

{{/* The clusters as K8S_GATEWAY_CLUSTER: NAME=KUBECONFIG[:CONTEXT], comma-separated, in
order; an empty path is the pod's own service account. Fails on a name given twice, or
more than one entry without a Secret. */}}
{{- define "k8s-gateway.clusters" -}}
{{- $seen := dict }}
{{- $local := 0 }}
{{- $out := list }}
{{- range .Values.clusters }}
{{- if hasKey $seen .name }}
{{- fail (printf "clusters: %s is given twice: each cluster needs a name of its own" .name) }}
{{- end }}
{{- $_ := set $seen .name true }}
{{- $path := "" }}
{{- if .kubeconfigSecret }}
{{- $path = printf "%s/%s/kubeconfig" (include "k8s-gateway.clustersDir" $) .name }}
{{- else }}
{{- $local = add1 $local }}
{{- end }}
{{- $context := "" }}
{{- with .context }}{{ $context = printf ":%s" . }}{{ end }}
{{- $out = append $out (printf "%s=%s%s" .name $path $context) }}
{{- end }}
{{- if gt $local 1 }}
{{- fail "clusters: at most one entry without kubeconfigSecret (the cluster the chart is installed in)" }}
{{- end }}
{{- join "," $out }}
{{- end -}}

{{/* The clusters read from a kubeconfig Secret. */}}
{{- define "k8s-gateway.remoteClusters" -}}
{{- $remote := list }}
{{- range .Values.clusters }}{{ if .kubeconfigSecret }}{{ $remote = append $remote . }}{{ end }}{{ end }}
{{- toJson $remote }}
{{- end -}}

{{/* The mounted zone files' paths, comma-separated (K8S_GATEWAY_ZONE_FILE). */}}
{{- define "k8s-gateway.zoneFilePaths" -}}
{{- $dir := include "k8s-gateway.zonesDir" . }}
{{- $paths := list }}
{{- range .Values.zoneFiles }}
{{- $paths = append $paths (printf "%s/%s" $dir .filename) }}
{{- end }}
{{- join "," $paths }}
{{- end }}
