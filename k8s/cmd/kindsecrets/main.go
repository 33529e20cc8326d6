// Command kindsecrets writes the kind overlay's development Secrets:
//
//	go run ./k8s/cmd/kindsecrets [dir]   # default k8s/overlays/kind/secrets
package main

import (
	"fmt"
	"os"

	"gatehouse.dev/k8s/internal/kindsecrets"
)

func main() {
	dir := "k8s/overlays/kind/secrets"
	if len(os.Args) > 1 {
		dir = os.Args[1]
	}
	if err := kindsecrets.Write(dir); err != nil {
		fmt.Fprintf(os.Stderr, "kindsecrets: %v\n", err)
		os.Exit(1)
	}
}
