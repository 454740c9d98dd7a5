// exit_codes.h: the exit statuses every program shares, in one place. The daemons' own
// convention (0 stopped, 1 fatal start-up or run-time error, 2 bad usage or config), and the
// sysexits.h values that estafette-sendmail, the `estafette` tool and program deliveries use
// (named here so that pure code needs no system header).
// Constants only; no state, any thread.
#pragma once

namespace estafette::base {

// Daemons (lib/daemon): how a daemon's main() ends.
inline constexpr int kExitStopped = 0;   // a stop signal, or its peer closed the channel
inline constexpr int kExitFatal = 1;     // an error while starting or running
inline constexpr int kExitBadStart = 2;  // bad options, a bad config, a failed start-up check

// sysexits.h
inline constexpr int kExOk = 0;
inline constexpr int kExUsage = 64;
inline constexpr int kExDataErr = 65;
inline constexpr int kExNoUser = 67;
inline constexpr int kExUnavailable = 69;
inline constexpr int kExSoftware = 70;
inline constexpr int kExIoErr = 74;
inline constexpr int kExTempFail = 75;  // try again later
inline constexpr int kExProtocol = 76;
inline constexpr int kExConfig = 78;

}  // namespace estafette::base
