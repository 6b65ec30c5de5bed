# frozen_string_literal: true

# A real, standalone Rails ActionCable server for the end-to-end tests in
# js-client-tests, as a Rails app mounts it in its own config.ru
# (map("/cable") { run ActionCable.server }), with Rails' redis adapter. Run
# it with puma (Debian: apt-get install -y puma), which supports the Rack
# socket hijack ActionCable needs:
#
#   REDIS_URL=redis://127.0.0.1:6379 CHANNEL_PREFIX=myapp_production \
#     puma --bind tcp://127.0.0.1:28080 testdata/rails/e2e/config.ru
#
# Configuration: see setup.rb (CABLE_CONFIG, or REDIS_URL and
# CHANNEL_PREFIX). GET /up answers 200 "ok" once the app is loaded.
#
# Channels, as gocable's (channels/chat.go, the chat room of the Rails
# guide):
#   ChatChannel  params room (required); streams "chat_<room>"; speak
#                broadcasts {user, message} to the room.

require_relative "setup"

module ApplicationCable
  # Connections are not identified: no internal action_cable/ channel.
  class Connection < ActionCable::Connection::Base
  end

  class Channel < ActionCable::Channel::Base
  end
end

class ChatChannel < ApplicationCable::Channel
  def subscribed
    if params[:room].blank?
      reject
    else
      stream_from "chat_#{params[:room]}"
    end
  end

  def speak(data)
    ActionCable.server.broadcast("chat_#{params[:room]}", { user: data["user"], message: data["message"] })
  end
end

server = E2E.server
server.config.connection_class = -> { ApplicationCable::Connection }
# The tests' clients send an Origin of their own host:port.
server.config.disable_request_forgery_protection = true

map("/cable") { run ActionCable.server }
map("/up") { run ->(_env) { [200, { "Content-Type" => "text/plain" }, ["ok"]] } }
