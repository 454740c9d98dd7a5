#include "lib/auth/backend.h"

namespace estafette::auth {

FileBackend::FileBackend(event::Loop& loop, std::shared_ptr<const PasswdFile> file,
                         event::BlockingPool::Options options)
    : loop_(loop), file_(std::move(file)), pool_(loop, options, "auth") {}

void FileBackend::verify(Credentials credentials, const ClientInfo&, Done done) {
  // PLAIN's authorization identity: only the user's own (nobody may act for another here).
  const bool authzid_ok =
      credentials.authzid.empty() || credentials.authzid == credentials.username;
  auto accepted = std::make_shared<bool>(false);
  auto user = std::make_shared<std::string>(credentials.username);
  bool queued = pool_.submit(
      [file = file_, credentials = std::move(credentials), accepted, authzid_ok] {
        const std::string* hash = file->hash_of(credentials.username);
        // The same work for an unknown user as for a known one.
        bool match = verify_password(credentials.password, hash ? *hash : dummy_hash());
        *accepted = match && hash != nullptr && authzid_ok;
      },
      [accepted, user, done](event::BlockingPool::Outcome outcome) {
        if (outcome != event::BlockingPool::Outcome::Answered) {
          done(Verdict::Unavailable, "");
          return;
        }
        done(*accepted ? Verdict::Accepted : Verdict::Refused, *accepted ? *user : "");
      });
  // Never inside verify(), and never after this backend is gone.
  if (!queued) loop_.post(guard_.wrap([done] { done(Verdict::Unavailable, ""); }));
}

}  // namespace estafette::auth
