module gatehouse.dev/k8s

go 1.26.0
