module gatehouse.dev/e2e

go 1.26.0

require gatehouse.dev/kit v0.0.0

replace gatehouse.dev/kit => ../kit
