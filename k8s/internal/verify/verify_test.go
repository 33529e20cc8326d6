package verify

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// containerPort resolves like the EndpointSlice controller: main
// containers, then native sidecars; a plain init container's ports do not
// count, and a numeric target no container declares is reported as such.
func TestContainerPort(t *testing.T) {
	always := corev1.ContainerRestartPolicyAlways
	pod := corev1.Pod{Spec: corev1.PodSpec{
		InitContainers: []corev1.Container{
			{Name: "migrate", Ports: []corev1.ContainerPort{{Name: "init", ContainerPort: 7000}}},
			{Name: "proxy", RestartPolicy: &always, Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}}},
		},
		Containers: []corev1.Container{{Name: "backend", Ports: []corev1.ContainerPort{{Name: "metrics", ContainerPort: 9091}}}},
	}}
	for _, tt := range []struct {
		tp       intstr.IntOrString
		port     int32
		declared bool
	}{
		{intstr.FromString("http"), 8080, true},
		{intstr.FromString("metrics"), 9091, true},
		{intstr.FromString("init"), 0, false},
		{intstr.FromInt32(8080), 8080, true},
		{intstr.FromInt32(8081), 8081, false},
	} {
		port, declared := containerPort(pod, tt.tp)
		if port != tt.port || declared != tt.declared {
			t.Errorf("containerPort(%s) = %d, %v; want %d, %v", tt.tp.String(), port, declared, tt.port, tt.declared)
		}
	}
}
