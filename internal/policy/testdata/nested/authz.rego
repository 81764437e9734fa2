package warden.authz

import data.warden.lib

allow if lib.is_chat
