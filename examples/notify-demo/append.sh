#!/bin/sh
# append.sh FILE — appends one line per delivery to FILE (relative to the
# directory t-minus runs in): the transition, the event and the delivery key.
# The delivery's JSON is on stdin; this script only reads its environment.
cat > /dev/null
echo "$T_MINUS_TRANSITION $T_MINUS_EVENT attempt=$T_MINUS_ATTEMPT key=$T_MINUS_DELIVERY" >> "$1"
