/*
 * login_status.h - Login Response status codes (RFC 7143 11.13.5).
 *
 * A status is one 16-bit value, Status-Class in the high byte and
 * Status-Detail in the low byte, the way send_login_rsp puts them on the
 * wire (BHS_STATUS_CLASS, BHS_STATUS_DETAIL) and the way the daemon's
 * login hooks (iscsi.h: admit, attach) return them.  0 is success; any
 * other value refuses the login and the connection is closed.
 *
 * Class 1 (redirection): a gateway of a cluster answers a login that
 * belongs to another gateway with LOGIN_TARGET_MOVED_TEMPORARILY and the
 * key TargetAddress=HOST:PORT,TPGT (RFC 7143 11.13.5 and 13.9; the route
 * hook of iscsi.h); the initiator logs in there instead, and comes back
 * to the original address the next time.  MOVED_PERMANENTLY is never
 * sent: placement changes (cluster.h).
 */
#ifndef PRISTINE_LOGIN_STATUS_H
#define PRISTINE_LOGIN_STATUS_H

#include <stdint.h>

/* Status-Class */
#define LOGIN_CLASS_SUCCESS         0x00
#define LOGIN_CLASS_REDIRECTION     0x01
#define LOGIN_CLASS_INITIATOR_ERROR 0x02   /* the initiator should not retry as is */
#define LOGIN_CLASS_TARGET_ERROR    0x03   /* the initiator may retry later */

/* Class 0: success */
#define LOGIN_SUCCESS                  0x0000
/* Class 1: redirection (TargetAddress says where) */
#define LOGIN_TARGET_MOVED_TEMPORARILY 0x0101
#define LOGIN_TARGET_MOVED_PERMANENTLY 0x0102
/* Class 2: initiator errors */
#define LOGIN_INITIATOR_ERROR          0x0200   /* miscellaneous: malformed request */
#define LOGIN_AUTHENTICATION_FAILED    0x0201   /* who it is was not proved */
#define LOGIN_AUTHORIZATION_FAILED     0x0202   /* who it is may not use this target */
#define LOGIN_NOT_FOUND                0x0203   /* no such target */
#define LOGIN_TARGET_REMOVED           0x0204
#define LOGIN_UNSUPPORTED_VERSION      0x0205
#define LOGIN_TOO_MANY_CONNECTIONS     0x0206
#define LOGIN_MISSING_PARAMETER        0x0207
#define LOGIN_CANT_INCLUDE_IN_SESSION  0x0208
#define LOGIN_SESSION_TYPE_UNSUPPORTED 0x0209
#define LOGIN_SESSION_DOES_NOT_EXIST   0x020a
#define LOGIN_INVALID_DURING_LOGIN     0x020b
/* Class 3: target errors */
#define LOGIN_TARGET_ERROR             0x0300   /* miscellaneous */
#define LOGIN_SERVICE_UNAVAILABLE      0x0301   /* try again later */
#define LOGIN_OUT_OF_RESOURCES         0x0302

/* Status-Class of a status (the byte at BHS_STATUS_CLASS). */
static inline uint8_t login_status_class(uint16_t status)
{
	return (uint8_t)(status >> 8);
}

/* Status-Detail of a status (the byte at BHS_STATUS_DETAIL). */
static inline uint8_t login_status_detail(uint16_t status)
{
	return (uint8_t)status;
}

#endif
