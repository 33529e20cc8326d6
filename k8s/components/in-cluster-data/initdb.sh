#!/bin/bash
# Runs once, on an empty data directory: one database and one login role per
# service, so neither can read the other's tables.
set -euo pipefail
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
  -v backend_pw="$BACKEND_DB_PASSWORD" -v authsvc_pw="$AUTHSVC_DB_PASSWORD" <<'SQL'
CREATE ROLE backend LOGIN PASSWORD :'backend_pw';
CREATE DATABASE backend OWNER backend;
CREATE ROLE authsvc LOGIN PASSWORD :'authsvc_pw';
CREATE DATABASE authsvc OWNER authsvc;
SQL
