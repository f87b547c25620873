package server

// clusterPKI is the cluster's certificate authority (see tls.go).
type clusterPKI struct{}
