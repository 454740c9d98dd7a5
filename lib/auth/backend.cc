#include "lib/auth/backend.h"

namespace estafette::auth {

FileBackend::FileBackend(event::Loop& loop, std::shared_ptr<const PasswdFile> file,
                         event::BlockingPool::Options options)
    : loop_(loop), file_(std::move(file)), pool_(loop, options, "auth") {}

void FileBackend::scram_secret(const std::string& user, const ClientInfo&, ScramDone done) {
  ScramLookup lookup;
  const PasswdEntry* entry = file_->entry_of(user);
  if (entry && entry->scram) {
    lookup.kind = ScramLookup::Kind::Found;
    lookup.secret = *entry->scram;
  } else {
    lookup.kind = ScramLookup::Kind::Unknown;
    lookup.secret =
        fake_scram_secret(file_->fake_scram_key(), user, file_->usual_scram_iterations());
  }
  loop_.post(guard_.wrap([done = std::move(done), lookup = std::move(lookup)] { done(lookup); }));
}

void FileBackend::verify(Credentials credentials, const ClientInfo&, Done done) {
  // PLAIN's authorization identity: only the user's own (nobody may act for another here).
  const bool authzid_ok =
      credentials.authzid.empty() || credentials.authzid == credentials.username;
  auto accepted = std::make_shared<bool>(false);
  auto user = std::make_shared<std::string>(credentials.username);
  bool queued = pool_.submit(
      [file = file_, credentials = std::move(credentials), accepted, authzid_ok] {
        const PasswdEntry* entry = file->entry_of(credentials.username);
        bool match = false;
        if (entry && entry->scram) {
          match = verify_scram_password(credentials.password, *entry->scram);
        } else {
          // The same work for an unknown user as for a known one.
          match = verify_password(credentials.password, entry ? entry->crypt_hash : dummy_hash());
        }
        *accepted = match && entry != nullptr && authzid_ok;
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
