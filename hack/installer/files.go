package installer

import (
	"fmt"
	"strings"

	"sigs.k8s.io/yaml"
)

func chartYAML(version, appVersion string) []byte {
	return fmt.Appendf(nil, `%sapiVersion: v2
name: %s
description: A Kubernetes operator that runs a LivePerson-ready OpenID provider (signing keys that rotate, a token server, LivePerson clients).
type: application
version: %s
appVersion: %s
home: https://github.com/lpauth/lpauth-operator
keywords: [liveperson, oidc, openid-connect, operator]
`, generatedHeader, ChartName, version, quote(appVersion))
}

func valuesYAML(v Values) []byte {
	res, err := yaml.Marshal(v.Resources)
	if err != nil || len(v.Resources) == 0 {
		res = []byte("{}\n")
	}
	indented := "  " + strings.ReplaceAll(strings.TrimRight(string(res), "\n"), "\n", "\n  ")
	if len(v.Resources) == 0 {
		indented = " {}"
	} else {
		indented = "\n" + indented
	}
	return fmt.Appendf(nil, `%s# The defaults render exactly dist/install.yaml (the cluster-wide install), but for its Namespace:
# helm keeps the release in the release namespace, so create it first, labelled for the
# restricted Pod Security Standard:
#   kubectl create namespace lpauth-system
#   kubectl label namespace lpauth-system pod-security.kubernetes.io/enforce=restricted

image:
  # The operator's image. Token servers run the same image (TOKEN_SERVER_IMAGE), so the two never
  # drift apart. A tag, or a digest as tag: "sha256:...". Quote a tag that looks like a number
  # (--set-string image.tag=20260101).
  repository: %s
  tag: %s

# Manager replicas; more than one needs leaderElection.enabled (one reconciles, others wait).
replicas: %d

leaderElection:
  enabled: %t

# The manager's log level: debug, info, error, or a verbosity number (zap's --zap-log-level).
logLevel: %s

metrics:
  # Serve Prometheus metrics on container port "metrics" (:8080). false: no metrics listener.
  enabled: %t

resources:%s

# Namespaces the manager watches. Empty: every namespace, with a ClusterRole. Set: a Role and
# RoleBinding in each of them and none cluster-wide (Secrets included); objects in any other
# namespace are ignored. The namespaces must exist before the install.
watchNamespaces: []

# More manager flags (not those the values above set, nor the probes or the token-server image), e.g. ["--allowed-token-server-images=registry.brand.example/lpauth/"].
extraArgs: []

`, generatedHeader, v.ImageRepository, quote(v.ImageTag), v.Replicas, v.LeaderElection, quote(v.LogLevel), v.Metrics, indented)
}

const valuesSchema = `{
  "$schema": "http://json-schema.org/draft-07/schema#",
  "title": "lpauth-operator chart values",
  "type": "object",
  "additionalProperties": false,
  "required": ["image", "replicas", "leaderElection", "logLevel", "metrics"],
  "properties": {
    "global": {"type": "object"},
    "image": {
      "type": "object",
      "additionalProperties": false,
      "required": ["repository", "tag"],
      "properties": {
        "repository": {"type": "string", "pattern": "^[^\\s@]+$"},
        "tag": {"type": "string", "pattern": "^[A-Za-z0-9_][A-Za-z0-9_.:-]{0,127}$"}
      }
    },
    "replicas": {"type": "integer", "minimum": 1},
    "leaderElection": {
      "type": "object",
      "additionalProperties": false,
      "required": ["enabled"],
      "properties": {"enabled": {"type": "boolean"}}
    },
    "logLevel": {
      "anyOf": [
        {"type": "string", "enum": ["debug", "info", "error", "panic"]},
        {"type": "integer", "minimum": 1}
      ]
    },
    "metrics": {
      "type": "object",
      "additionalProperties": false,
      "required": ["enabled"],
      "properties": {"enabled": {"type": "boolean"}}
    },
    "resources": {"type": "object"},
    "watchNamespaces": {
      "type": "array",
      "uniqueItems": true,
      "items": {"type": "string", "maxLength": 63, "pattern": "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"}
    },
    "extraArgs": {
      "type": "array",
      "items": {
        "type": "string",
        "pattern": "^--[a-z]",
        "not": {"pattern": "^--(watch-namespaces|leader-elect|zap-log-level|metrics-bind-address|health-probe-bind-address|token-server-image)(=|$)"},
        "description": "flags the values above set (watchNamespaces, leaderElection, logLevel, metrics) are refused here, so the chart's checks hold"
      }
    }
  }
}
`

const helpers = `{{/* The operator's image, by tag or by digest. */}}
{{- define "lpauth-operator.image" -}}
{{- if hasPrefix "sha256:" .Values.image.tag -}}
{{ .Values.image.repository }}@{{ .Values.image.tag }}
{{- else -}}
{{ .Values.image.repository }}:{{ .Values.image.tag }}
{{- end -}}
{{- end -}}
`

const notes = `lpauth-operator {{ .Chart.AppVersion }} is installed in namespace {{ .Release.Namespace }}.
{{- if .Values.watchNamespaces }}
It watches only: {{ join ", " .Values.watchNamespaces }} (Roles there, nothing cluster-wide).
{{- else }}
It watches every namespace.
{{- end }}

Next: apply a SigningKey, a TokenServer and a LivePersonAuthClient (see the README's "Quick start"),
then: kubectl get signingkeys,tokenservers,livepersonauthclients -A
`
