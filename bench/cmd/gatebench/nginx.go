package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// nginxConf is the comparison point for "a mature proxy": proxy_pass with
// upstream keep-alive and nothing else. keepalive_requests is raised on both
// sides because nginx's default (1000 since 1.19.10) closes a connection
// every 1000 requests, which neither the Go proxies nor wrk do; access_log is
// off as our proxy logs no access lines at LOG_LEVEL=warn.
const nginxConf = `daemon off;
master_process on;
worker_processes auto;
pid {{prefix}}/nginx.pid;
error_log {{prefix}}/error.log warn;
events {
    worker_connections 4096;
}
http {
    access_log off;
    client_body_temp_path {{prefix}}/tmp/body;
    proxy_temp_path {{prefix}}/tmp/proxy;
    fastcgi_temp_path {{prefix}}/tmp/fastcgi;
    uwsgi_temp_path {{prefix}}/tmp/uwsgi;
    scgi_temp_path {{prefix}}/tmp/scgi;
    keepalive_requests 1000000;
    upstream bench_upstream {
        server {{upstream}};
        keepalive 64;
        keepalive_requests 1000000;
    }
    server {
        listen {{listen}};
        location / {
            proxy_pass http://bench_upstream;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }
}
`

// startNginx writes a private prefix directory and runs nginx from it in the
// foreground (our child, its workers its children) on listen.
func startNginx(work, listen, upstreamHostPort string) (*proc, error) {
	bin, err := lookTool("nginx")
	if err != nil {
		return nil, err
	}
	prefix, err := os.MkdirTemp(work, "nginx-")
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Join(prefix, "tmp"), 0o755); err != nil {
		return nil, err
	}
	// Workers drop to an unprivileged user when we are root; they must be
	// able to reach the prefix.
	if err := os.Chmod(prefix, 0o755); err != nil {
		return nil, err
	}
	conf := strings.NewReplacer("{{prefix}}", prefix, "{{upstream}}", upstreamHostPort, "{{listen}}", listen).Replace(nginxConf)
	confPath := filepath.Join(prefix, "nginx.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		return nil, err
	}
	p, err := startProc("nginx", work, bin, []string{"-p", prefix, "-c", confPath, "-e", filepath.Join(prefix, "error.log")}, nil)
	if err != nil {
		return nil, fmt.Errorf("nginx: %w", err)
	}
	return p, nil
}
