package v1alpha1

// Condition types of a Shop.
const (
	// ConditionReady is True when every workload is available and every certificate is issued.
	ConditionReady = "Ready"
	// ConditionProgressing is True while the Shop moves towards its spec.
	ConditionProgressing = "Progressing"
	// ConditionDegraded is True when something needs an admin: a missing API, a failed write, lost credentials.
	ConditionDegraded = "Degraded"
)

// Condition reasons, CamelCase as metav1.Condition requires.
const (
	ReasonAvailable           = "Available"
	ReasonWaitingForWorkloads = "WaitingForWorkloads"
	ReasonWaitingForCerts     = "WaitingForCertificates"
	ReasonReconciled          = "Reconciled"
	ReasonAsExpected          = "AsExpected"
	ReasonMissingAPIs         = "MissingAPIs"
	ReasonApplyFailed         = "ApplyFailed"
	ReasonCredentialsLost     = "CredentialsLost"
	ReasonCredentialsInvalid  = "CredentialsInvalid"
	ReasonInvalidSpec         = "InvalidSpec"
	ReasonPaused              = "Paused"
	ReasonNotReady            = "NotReady"
)
