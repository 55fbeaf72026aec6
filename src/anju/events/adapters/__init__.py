"""Device adapters: each turns one protocol's payloads into canonical events or rejections."""
