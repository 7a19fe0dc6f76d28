{{/* Names, labels and the pod template every Quartet role shares. */}}

{{- define "quartet.fullname" -}}
{{- if contains "quartet" .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-quartet" .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* The name of one service's resources: <fullname>-<service>[-<role>]. */}}
{{- define "quartet.name" -}}
{{- $base := printf "%s-%s" (include "quartet.fullname" .root) .key -}}
{{- if .role -}}
{{- printf "%s-%s" $base .role | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $base | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "quartet.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version | replace "+" "_" }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/part-of: quartet
{{ include "quartet.selectorLabels" . }}
{{- end -}}

{{- define "quartet.selectorLabels" -}}
app.kubernetes.io/name: {{ .svc.program }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
{{- if .role }}
app.kubernetes.io/component: {{ .role }}
{{- end }}
{{- end -}}

{{- define "quartet.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "quartet.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "quartet.image" -}}
{{- printf "%s/%s:%s" .root.Values.image.repository .svc.program (.root.Values.image.tag | default .root.Chart.AppVersion) -}}
{{- end -}}

{{/* The settings every container of a service reads: its ConfigMap and Secret, plus per-pod values. */}}
{{- define "quartet.env" -}}
{{- $v := .root.Values -}}
envFrom:
  - configMapRef:
      name: {{ include "quartet.name" (dict "root" .root "key" .key) }}
  - secretRef:
      name: {{ include "quartet.name" (dict "root" .root "key" .key) }}
  {{- with .svc.secretEnvFrom }}
  - secretRef:
      name: {{ . }}
  {{- end }}
env:
  # Names the worker's transactional id: unique per pod and, in a StatefulSet, stable across its restarts.
  - name: {{ .svc.prefix }}INSTANCE_ID
    valueFrom:
      fieldRef:
        fieldPath: metadata.name
  {{- if $v.kafka.sasl.passwordSecret.name }}
  - name: KAFKA_SASL_PASSWORD
    valueFrom:
      secretKeyRef:
        name: {{ $v.kafka.sasl.passwordSecret.name }}
        key: {{ $v.kafka.sasl.passwordSecret.key }}
  {{- end }}
  {{- if $v.database.existingSecret.name }}
  - name: PGPASSWORD
    valueFrom:
      secretKeyRef:
        name: {{ $v.database.existingSecret.name }}
        key: {{ .svc.databaseUser }}
  {{- end }}
  {{- if $v.redis.existingSecret.name }}
  - name: REDIS_URL
    valueFrom:
      secretKeyRef:
        name: {{ $v.redis.existingSecret.name }}
        key: {{ $v.redis.existingSecret.key }}
  {{- end }}
{{- end -}}

{{- define "quartet.volumeMounts" -}}
{{- $v := .root.Values -}}
volumeMounts:
  - name: tmp
    mountPath: /tmp
  - name: work
    mountPath: /var/lib/quartet
  {{- if $v.kafka.tls.caSecret.name }}
  - name: kafka-ca
    mountPath: /etc/quartet/kafka-ca
    readOnly: true
  {{- end }}
  {{- if $v.database.caSecret.name }}
  - name: postgres-ca
    mountPath: /etc/quartet/postgres-ca
    readOnly: true
  {{- end }}
{{- end -}}

{{- define "quartet.volumes" -}}
{{- $v := .root.Values -}}
volumes:
  - name: tmp
    emptyDir: {}
  - name: work
    emptyDir: {}
  {{- if $v.kafka.tls.caSecret.name }}
  - name: kafka-ca
    secret:
      secretName: {{ $v.kafka.tls.caSecret.name }}
      items:
        - key: {{ $v.kafka.tls.caSecret.key }}
          path: ca.crt
  {{- end }}
  {{- if $v.database.caSecret.name }}
  - name: postgres-ca
    secret:
      secretName: {{ $v.database.caSecret.name }}
      items:
        - key: {{ $v.database.caSecret.key }}
          path: ca.crt
  {{- end }}
{{- end -}}

{{/* A pod running one role: dict root, key, svc, role, command, spec (the role's values). */}}
{{- define "quartet.pod" -}}
{{- $v := .root.Values -}}
metadata:
  labels:
    {{- include "quartet.labels" . | nindent 4 }}
  annotations:
    checksum/config: {{ include (print .root.Template.BasePath "/configmap.yaml") .root | sha256sum }}
    checksum/secret: {{ include (print .root.Template.BasePath "/secret.yaml") .root | sha256sum }}
    prometheus.io/scrape: "true"
    prometheus.io/port: {{ .svc.port | quote }}
    prometheus.io/path: /metrics
    {{- with $v.podAnnotations }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
spec:
  serviceAccountName: {{ include "quartet.serviceAccountName" .root }}
  automountServiceAccountToken: false
  terminationGracePeriodSeconds: {{ $v.terminationGracePeriodSeconds }}
  securityContext:
    {{- toYaml $v.podSecurityContext | nindent 4 }}
  {{- with $v.imagePullSecrets }}
  imagePullSecrets:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  containers:
    - name: {{ .role }}
      image: {{ include "quartet.image" . }}
      imagePullPolicy: {{ $v.image.pullPolicy }}
      args: [{{ .command | quote }}]
      ports:
        - name: http
          containerPort: {{ .svc.port }}
          protocol: TCP
      {{- include "quartet.env" . | nindent 6 }}
      startupProbe:
        httpGet:
          path: {{ $v.probes.livenessPath }}
          port: http
        periodSeconds: 2
        failureThreshold: 60
      livenessProbe:
        httpGet:
          path: {{ $v.probes.livenessPath }}
          port: http
        periodSeconds: 10
        timeoutSeconds: 3
        failureThreshold: 3
      readinessProbe:
        httpGet:
          path: {{ $v.probes.readinessPath }}
          port: http
        periodSeconds: 5
        timeoutSeconds: 3
        failureThreshold: 3
      resources:
        {{- toYaml .spec.resources | nindent 8 }}
      securityContext:
        {{- toYaml $v.securityContext | nindent 8 }}
      {{- include "quartet.volumeMounts" . | nindent 6 }}
  {{- include "quartet.volumes" . | nindent 2 }}
  {{- with $v.nodeSelector }}
  nodeSelector:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $v.tolerations }}
  tolerations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $v.affinity }}
  affinity:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end -}}
