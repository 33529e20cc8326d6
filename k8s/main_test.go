package k8s

import (
	"testing"

	"gatehouse.dev/kit/testenv"
)

// TestMain stops the Postgres and Redis that the container test started.
func TestMain(m *testing.M) { testenv.Main(m) }
