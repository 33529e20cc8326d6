"use client";
// The session for every page, from Better Auth's useSession (GET
// /api/auth/get-session through the proxy).
import { createContext, useContext } from "react";
import { authClient } from "../lib/auth-client";

const AuthContext = createContext(null);

export function AuthProvider({ children }) {
  const { data, isPending, refetch } = authClient.useSession();
  const value = {
    user: data?.user ?? null,
    isPending,
    refetch,
    signOut: () => authClient.signOut(),
  };
  return <AuthContext.Provider value={value}>{children}</AuthContext.Provider>;
}

export function useAuth() {
  return useContext(AuthContext);
}
