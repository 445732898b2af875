{
  "targets": [
    {
      "target_name": "ecdsa_digest",
      "sources": ["src/ecdsa_digest.c"],
      "cflags": ["-O2", "-Wall", "-Wextra"],
      # Resolve every OpenSSL symbol when the addon is loaded (a clean load error, never a
      # lazy-binding abort on first call). The symbols come from the node binary itself:
      # the addon must not link a second libcrypto.
      "ldflags": ["-Wl,-z,now"]
    }
  ]
}
