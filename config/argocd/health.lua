-- Argo CD health check for shopstack.dev/Shop.
--
--   Suspended    the annotation shopstack.dev/paused: "true" stops the operator
--   Degraded     Degraded=True for the current generation: something needs an admin
--   Healthy      Ready=True and status.observedGeneration == metadata.generation
--   Progressing  anything else: the operator is still working towards the spec
--
-- Argo CD runs health checks with the base and table libraries only, so this
-- script uses no string functions.
local hs = {}

local generation = obj.metadata.generation
local observed = nil
if obj.status ~= nil then
  observed = obj.status.observedGeneration
end

local function condition(conditionType)
  if obj.status == nil or obj.status.conditions == nil then
    return nil
  end
  for _, c in ipairs(obj.status.conditions) do
    if c.type == conditionType then
      return c
    end
  end
  return nil
end

-- A condition set for an older generation says nothing about the current spec.
local function current(c)
  return c.observedGeneration == nil or generation == nil or c.observedGeneration >= generation
end

local function messageOr(c, fallback)
  if c ~= nil and c.message ~= nil and c.message ~= "" then
    return c.message
  end
  return fallback
end

if obj.metadata.annotations ~= nil and obj.metadata.annotations["shopstack.dev/paused"] == "true" then
  hs.status = "Suspended"
  hs.message = "reconciling is paused by the annotation shopstack.dev/paused: \"true\""
  return hs
end

local degraded = condition("Degraded")
if degraded ~= nil and degraded.status == "True" and current(degraded) then
  hs.status = "Degraded"
  hs.message = messageOr(degraded, "the Shop is degraded")
  return hs
end

local ready = condition("Ready")
if ready ~= nil and ready.status == "True" and observed ~= nil and observed == generation then
  hs.status = "Healthy"
  hs.message = messageOr(ready, "the Shop is ready")
  return hs
end

hs.status = "Progressing"
if observed == nil and condition("Ready") == nil then
  hs.message = "waiting for the operator to report the Shop's status"
  return hs
end
if observed ~= generation then
  hs.message = "waiting for the operator to reconcile generation " .. tostring(generation) ..
    " (the status describes generation " .. tostring(observed or 0) .. ")"
  return hs
end
local progressing = condition("Progressing")
if progressing ~= nil and progressing.status == "True" then
  hs.message = messageOr(progressing, "the Shop is progressing")
  return hs
end
hs.message = messageOr(ready, "waiting for the Shop to become ready")
return hs
