package main

import (
	"context"
	"net/http"

	"go.uber.org/zap"

	"gatehouse.dev/backend/internal/todo"
	"gatehouse.dev/kit/httpx"
	"gatehouse.dev/kit/wire"
)

type userKey struct{}

var errUnauthenticated = httpx.Errorf(http.StatusUnauthorized, "UNAUTHENTICATED",
	"Missing or malformed X-User-ID; requests must come through the Gatehouse proxy.")

// requireUserID parses the proxy's X-User-ID once and puts a typed UserID in
// the context. Exactly one well-formed value is accepted: two headers could
// mean a client slipped one past a proxy, so they are refused, not merged.
func requireUserID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		vals := r.Header.Values(wire.HeaderUserID)
		if len(vals) != 1 {
			httpx.WriteError(w, r, errUnauthenticated)
			return
		}
		uid, err := todo.ParseUserID(vals[0])
		if err != nil {
			httpx.WriteError(w, r, errUnauthenticated)
			return
		}
		ctx := httpx.AddLogFields(r.Context(), zap.String("user_id", uid.String()))
		next.ServeHTTP(w, r.WithContext(context.WithValue(ctx, userKey{}, uid)))
	})
}

// userIDFrom returns the UserID set by requireUserID.
func userIDFrom(ctx context.Context) todo.UserID {
	uid, _ := ctx.Value(userKey{}).(todo.UserID)
	return uid
}
