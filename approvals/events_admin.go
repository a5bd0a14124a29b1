package approvals

// The audit event types of administrative actions: they record something an
// admin did or tried that changes no request (an export, a backup), or an
// invitation outcome that has no request of its own. Service.RecordAdminAction
// appends them.
const (
	// EventDecisionsExported records a decision export from any surface
	// (the admin API, the reviewer UI). Its details name the surface, the
	// format, the filters given (status, since, until) and the rows sent.
	EventDecisionsExported EventType = "admin.decisions_exported"
	// EventDecisionsExportFailed records an export that failed after
	// rows had started to leave: the caller holds a partial file. Its
	// details are those of EventDecisionsExported, with the rows sent.
	EventDecisionsExportFailed EventType = "admin.decisions_export_failed"
	// EventBackupDownloaded records a download of a snapshot of the
	// database; its details name the surface and the bytes sent.
	EventBackupDownloaded EventType = "admin.backup_downloaded"
	// EventBackupFailed records a backup download that failed after bytes
	// had started to leave; its details name the surface and the bytes
	// sent.
	EventBackupFailed EventType = "admin.backup_failed"
)

// Surfaces an administrative action can come from, the "surface" detail of
// its audit event.
const (
	SurfaceAPI = "api"
	SurfaceUI  = "ui"
	SurfaceCLI = "cli"
)

// adminEventTypes are the types RecordAdminAction accepts.
var adminEventTypes = map[EventType]bool{
	EventDecisionsExported:     true,
	EventDecisionsExportFailed: true,
	EventBackupDownloaded:      true,
	EventBackupFailed:          true,
	EventInvitationFailed:      true,
	EventInvitationLinked:      true,
}

// IsAdminEvent reports whether t is the type of an administrative action,
// one that Service.RecordAdminAction records.
func IsAdminEvent(t EventType) bool { return adminEventTypes[t] }
