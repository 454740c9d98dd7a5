// queue.h: the public face of lib/queue, for code that queues or reads messages.
// queue_id.h: QueueId, make_queue_id(); backend.h: Envelope, IncomingMessage, StoredMessage,
// Backend, write_message(); file_backend.h, segment_backend.h: the backends; committer.h:
// Committer. Thread rules, ownership and errors are in each of those headers.
#pragma once

#include "lib/queue/backend.h"
#include "lib/queue/committer.h"
#include "lib/queue/file_backend.h"
#include "lib/queue/queue_id.h"
#include "lib/queue/segment_backend.h"
