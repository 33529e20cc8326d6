/** Next.js behind the Gatehouse proxy: the browser only ever talks to the
 *  proxy's origin, so no rewrites, CORS or auth URLs are configured here. */
const nextConfig = {
  poweredByHeader: false,
  reactStrictMode: true,
};

export default nextConfig;
