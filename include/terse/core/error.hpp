#pragma once
/// @file
/// terse's one error vocabulary: `terse::error` carries a code, the failed
/// call and where it was made. `TERSE_EXPECTS` checks arguments; the backend
/// macros (`TERSE_CUDA_TRY`, `TERSE_NCCL_TRY`, `TERSE_MPI_TRY`) live beside
/// their backends in cuda_error.hpp, nccl_error.hpp and mpi_error.hpp.

#include <cstdio>
#include <stdexcept>
#include <string>
#include <string_view>

namespace terse {

/// What went wrong, so a caller can tell a bad argument from a dead peer.
enum class errc {
  invalid_argument,   ///< a precondition on the caller's arguments failed
  mismatch,           ///< ranks called a collective with different arguments
  timeout,            ///< a peer did not answer within the deadline
  peer_failed,        ///< a peer reported failure or died
  malformed_payload,  ///< received bytes failed validation
  non_finite,         ///< NaN or Inf where a finite value is required
  unsupported,        ///< the operation is not available for this backend or type
  cuda,               ///< a CUDA runtime call failed
  nccl,               ///< an NCCL call failed
  mpi,                ///< an MPI call failed
  io,                 ///< reading or writing a file or a state blob failed
  diverged,           ///< a decentralized run's ranks drift apart (growing consensus distance, NaN or Inf)
  internal,           ///< a bug in terse
};

constexpr std::string_view to_string(errc code) noexcept
{
  switch (code) {
    case errc::invalid_argument: return "invalid argument";
    case errc::mismatch: return "mismatched call across ranks";
    case errc::timeout: return "timeout";
    case errc::peer_failed: return "peer failed";
    case errc::malformed_payload: return "malformed payload";
    case errc::non_finite: return "non-finite value";
    case errc::unsupported: return "unsupported";
    case errc::cuda: return "CUDA error";
    case errc::nccl: return "NCCL error";
    case errc::mpi: return "MPI error";
    case errc::io: return "I/O error";
    case errc::diverged: return "diverged";
    case errc::internal: return "internal error";
  }
  return "unknown error";
}

/// Where a call was made. (std::source_location is not available to every
/// compiler we support, so the macros fill this in.)
struct source_location {
  const char* file = "";
  int line = 0;
  const char* function = "";
};

#define TERSE_HERE (::terse::source_location{__FILE__, __LINE__, static_cast<const char*>(__func__)})

/// The exception every terse failure raises.
class error : public std::runtime_error {
 public:
  error(errc code, std::string_view message, source_location where = {})
      : std::runtime_error(format(code, message, where)), code_(code), where_(where)
  {
  }

  errc code() const noexcept { return code_; }
  const source_location& where() const noexcept { return where_; }

 private:
  static std::string format(errc code, std::string_view message, source_location where)
  {
    std::string text = "terse: ";
    text += to_string(code);
    text += ": ";
    text += message;
    if (where.line != 0) {
      text += " [at ";
      text += where.file;
      text += ':';
      text += std::to_string(where.line);
      text += " in ";
      text += where.function;
      text += ']';
    }
    return text;
  }

  errc code_;
  source_location where_;
};

/// A failure of one named peer: raised where a transport reports failures
/// per peer (`transport_options::failures = failure_scope::peer`), so a
/// caller can drop that peer and go on with the others. The code is
/// errc::peer_failed (the peer died or left) or errc::timeout (it did not
/// answer within the deadline).
class peer_error : public error {
 public:
  peer_error(int peer, std::string_view message, source_location where = {}, errc code = errc::peer_failed)
      : error(code, message, where), peer_(peer)
  {
  }

  /// The failed peer's rank in the transport that raised.
  int peer() const noexcept { return peer_; }

 private:
  int peer_;
};

namespace detail {
[[noreturn]] inline void throw_error(errc code, std::string_view message, source_location where)
{
  throw ::terse::error(code, message, where);
}

/// For destructors and other places that must not throw: report and go on.
inline void report_error(errc code, std::string_view message, source_location where) noexcept
{
  std::fprintf(stderr, "terse: %.*s: %.*s [at %s:%d in %s] (ignored in a noexcept context)\n",
               static_cast<int>(to_string(code).size()), to_string(code).data(), static_cast<int>(message.size()),
               message.data(), where.file, where.line, where.function);
}
}  // namespace detail

}  // namespace terse

/// Throws terse::error(invalid_argument) naming the failed condition unless
/// `cond` holds. An optional second argument adds a message.
#define TERSE_EXPECTS(cond, ...)                                                                                    \
  do {                                                                                                              \
    if (!(cond)) [[unlikely]] {                                                                                     \
      ::terse::detail::throw_error(::terse::errc::invalid_argument,                                                 \
                                   ::terse::detail::expects_message(#cond __VA_OPT__(, ) __VA_ARGS__), TERSE_HERE); \
    }                                                                                                               \
  } while (false)

/// Throws terse::error(code, message) unless `cond` holds.
#define TERSE_CHECK(cond, code, message)                           \
  do {                                                             \
    if (!(cond)) [[unlikely]] {                                    \
      ::terse::detail::throw_error((code), (message), TERSE_HERE); \
    }                                                              \
  } while (false)

/// Throws terse::error(code, message) unconditionally.
#define TERSE_FAIL(code, message) ::terse::detail::throw_error((code), (message), TERSE_HERE)

namespace terse::detail {
inline std::string expects_message(std::string_view condition, std::string_view detail = {})
{
  std::string text = "expected ";
  text += condition;
  if (!detail.empty()) {
    text += ": ";
    text += detail;
  }
  return text;
}
}  // namespace terse::detail
