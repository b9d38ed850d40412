"""The catalog's web app: the JSON API's routers, sign-in and tokens, request guards and
security headers, and the server-rendered pages with their figures."""
