"""Cryptography and credential files that every layer may use: the data dir's PKI, token
hashing, service-account token signing. Imports nothing of joblet but errors, clock and
objects, so the store, the API layer and the node agent can all rely on it.

Files in a data dir ``D`` (all 0600 in 0700 directories):

* ``D/pki/ca.crt``, ``D/pki/ca.key`` — the cluster CA (certificate-authority-data)
* ``D/pki/apiserver.crt``, ``D/pki/apiserver.key`` — the serving certificate
* ``D/pki/sa.key`` — the service-account token signing key (its public half verifies)
* ``D/tokens.json`` — bearer tokens, stored hashed (name, groups, expiry)
* ``D/kubeconfig`` — the admin kubeconfig: CA data and the admin token
"""
