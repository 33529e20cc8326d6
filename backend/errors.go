package main

import (
	"context"
	"errors"
	"net/http"

	"gatehouse.dev/backend/internal/todo"
	"gatehouse.dev/kit/httpx"
	"gatehouse.dev/kit/pgdb"
)

// storeError maps store and database errors to what a client may learn.
func storeError(err error) error {
	var te *todo.TitleError
	switch {
	case errors.Is(err, todo.ErrNotFound):
		return httpx.Errorf(http.StatusNotFound, "TODO_NOT_FOUND", "No todo with that id.")
	case errors.As(err, &te):
		return httpx.Errorf(http.StatusBadRequest, "INVALID_TITLE", upperFirst(te.Reason)+".")
	case pgdb.Unavailable(err), // includes a pooled connection found broken
		// The caller went away mid-query: nobody reads the answer, and it is
		// not an internal error worth logging (e2e TestReliabilitySlowBackend).
		errors.Is(err, context.Canceled):
		return httpx.ErrUnavailable
	}
	return err
}

func upperFirst(s string) string {
	if s == "" || s[0] < 'a' || s[0] > 'z' {
		return s
	}
	return string(s[0]-'a'+'A') + s[1:]
}
