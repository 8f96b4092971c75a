/*
 * version.h - the one version string of pristine: pristined --version,
 * its start-up line, the API's status and pristinectl --version.
 */
#ifndef PRISTINE_UTIL_VERSION_H
#define PRISTINE_UTIL_VERSION_H

#define PRISTINE_VERSION "0.1.0"

#endif
